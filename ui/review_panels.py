"""Widgets of the Review page: scored canvas labels, queue controls, predict and auto-accept panels, summaries."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import streamlit as st
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from core.annotate.state import LabelInfo, resolve_label
from core.boxes import Box
from core.jobs import JobError
from core.model.prediction import JOB_KIND, predict_params, start_prediction
from core.review.auto_accept import auto_accept
from core.review.decisions import ReviewResult, accept, correct, no_garments, reject
from core.review.item import ReviewItem
from core.review.queue import DEFAULT_THRESHOLD, ORDERS, QueueItem, ReviewQueueFilter
from core.review.summaries import audit_error_rate, decision_summary
from core.settings import Settings
from db.engine import session_scope
from db.models import JobStatus, ModelKind
from db.queries import latest_job, model_version_names
from ui.auth import require_role
from ui.canvas import CanvasBox
from ui.jobs import job_progress_ui
from ui.shared_cache import shared_review_queue

# A prediction is drawn with its score in the canvas label ("Jeans 0.83") so the reviewer
# sees it on the box; the score is stripped again when the canvas hands the boxes back.
_SCORED = re.compile(r"^(?P<label>.+?)\s+(?P<score>[01]\.\d{2})$")


def scored_label(label: str, score: float) -> str:
    """The canvas text of a predicted box: its label and score."""
    return f"{label} {score:.2f}"


def strip_score(text: str) -> str:
    """The label of a canvas box whose text may end with a score (see :func:`scored_label`)."""
    m = _SCORED.match(text.strip())
    return m.group("label") if m else text.strip()


def _md(text: str) -> str:
    """Text for st.markdown with the characters Markdown would read as markup escaped (label names are free text)."""
    return re.sub(r"([\\`*_\[\]<>#|~$])", r"\\\1", text)


def alternatives_hint(item: ReviewItem, max_labels: int = 3) -> str | None:
    """What else the model called the shown boxes, e.g. "box 1 Shirts 0.32 — also: Jackets 0.32" (Markdown).

    Only other labels at half the shown score or more: the detector keeps a low-scored box of
    nearly every class on every garment, and those are noise, not a second opinion.
    """
    parts = []
    for n, p in enumerate(item.predictions, start=1):
        seen, others = {p.label}, []
        for a in item.alternatives.get(p.id, ()):
            if a.label not in seen and a.score >= p.score / 2:
                seen.add(a.label)
                others.append(f"{_md(a.label)} {a.score:.2f}")
        if others:
            parts.append(f"box {n} {_md(p.label)} {p.score:.2f} — also: {', '.join(others[:max_labels])}")
    if not parts:
        return None
    joined = " · ".join(parts)
    return f"One box per garment; the model also named it otherwise: {joined}. Relabel the box if another name fits."


@dataclass(frozen=True)
class ReviewControls:
    """What the sidebar controls chose."""

    model_version_id: int
    threshold: float
    order: str
    flt: ReviewQueueFilter


def versions_with_names(engine: Engine, project_id: int) -> dict[int, str]:
    """The project's detector versions, newest first, as id -> display name (tags models predict no boxes)."""
    with session_scope(engine) as session:
        names = model_version_names(session, project_id, ModelKind.DETECTOR)
    return {vid: f"#{vid} {name}" for vid, name in names.items()}


def review_controls_ui(
    versions: dict[int, str], default_version: int, labels: Sequence[LabelInfo], project_id: int
) -> ReviewControls:
    """Sidebar: model version, threshold, queue order and filters."""
    sb = st.sidebar
    ids = list(versions)
    version = sb.selectbox(
        "Model version under review",
        ids,
        index=ids.index(default_version),
        format_func=versions.__getitem__,
        key=f"rev_version_{project_id}",
    )
    threshold = sb.slider(
        "Confidence threshold",
        0.0,
        1.0,
        DEFAULT_THRESHOLD,
        0.05,
        key=f"rev_threshold_{project_id}",
        help="Boxes at or above it are drawn on the canvas; the rest count as 'under the threshold'.",
    )
    order = sb.radio("Queue order", list(ORDERS), format_func=ORDERS.__getitem__, key=f"rev_order_{project_id}")
    names = {lab.id: lab.name for lab in labels}
    with sb.expander("Queue filters", expanded=False):
        label_ids = st.multiselect(
            "Has a predicted box labelled",
            list(names),
            format_func=names.__getitem__,
            key=f"rev_f_label_{project_id}",
            placeholder="any label",
        )
        main = st.multiselect(
            "Main garment (top box)", [lab.name for lab in labels], key=f"rev_f_main_{project_id}", placeholder="any"
        )
        lo, hi = st.slider("Top score between", 0.0, 1.0, (0.0, 1.0), 0.05, key=f"rev_f_score_{project_id}")
    return ReviewControls(
        int(version), float(threshold), str(order), ReviewQueueFilter(tuple(label_ids), lo, hi, tuple(main))
    )


def predict_panel_ui(
    engine: Engine, settings: Settings, project_id: int, versions: dict[int, str], who: str, selected: int | None = None
) -> None:
    """Run a model version over the project's images as a background job, with progress.

    ``selected`` (the version under review) is the one offered first.
    """
    with session_scope(engine) as session:
        latest = latest_job(session, JOB_KIND, project_id)
        job_id = latest.id if latest is not None else None
    # When it ends the whole page reruns: the queue has changed.
    job = job_progress_ui(job_id, lambda p: f"Predicting… {p.get('message', '')}")
    if job is not None and not job.status.is_final:
        return
    if job is not None and job.status is JobStatus.FAILED:
        st.caption(f"Last prediction job #{job_id} failed: {job.error}")
    if not versions:
        st.info("No detector version yet: train one on the Train page. Tags suggestions are on Review tags.")
        return
    with st.form("predict_form"):
        c1, c2 = st.columns(2)
        ids = list(versions)
        version = c1.selectbox(
            "Model version",
            ids,
            index=ids.index(selected) if selected in versions else 0,
            format_func=versions.__getitem__,
        )
        which = c2.selectbox(
            "Images",
            ["unlabelled", "all", "split:train", "split:val", "split:test"],
            help="unlabelled = status new (never annotated). Earlier versions' predictions are kept.",
        )
        go = st.form_submit_button("Predict", type="primary")
    if go:
        require_role("review.predict")
        try:
            job_id = start_prediction(engine, settings, predict_params(int(version), which, who=who))
        except JobError as exc:
            st.error(str(exc))
            return
        st.toast(f"Prediction job #{job_id} started.")
        st.rerun()


def thresholds_ui(labels: Sequence[LabelInfo], project_id: int) -> dict[str, float]:
    """Per-class auto-accept thresholds (a blank one never auto-accepts that class)."""
    frame = pd.DataFrame({"class": [lab.name for lab in labels], "auto-accept at or above": [None] * len(labels)})
    edited = st.data_editor(
        frame,
        hide_index=True,
        disabled=["class"],
        key=f"rev_thresholds_{project_id}",
        column_config={
            "auto-accept at or above": st.column_config.NumberColumn(min_value=0.0, max_value=1.0, step=0.05)
        },
    )
    return {
        str(r["class"]): float(r["auto-accept at or above"])
        for _, r in edited.iterrows()
        if r["auto-accept at or above"] is not None and not pd.isna(r["auto-accept at or above"])
    }


def summary_ui(engine: Engine, project_id: int, model_version_id: int) -> None:
    """Decisions per class and model version, the share accepted unchanged, and the audit error rate."""
    with session_scope(engine) as session:
        rows = decision_summary(session, project_id)
        audited, rate = audit_error_rate(session, model_version_id)
    if not rows:
        st.caption("No review decisions yet.")
    else:
        columns = [
            "version",
            "class",
            "reviewed",
            "accepted_share",
            "accepted",
            "moved",
            "relabelled",
            "deleted",
            "added",
            "rejected",
            "auto_accepted",
        ]
        frame = pd.DataFrame(rows).reindex(columns=columns).fillna({c: 0 for c in columns[4:]})
        st.dataframe(
            frame,
            hide_index=True,
            width="stretch",
            column_config={
                "accepted_share": st.column_config.ProgressColumn("accepted unchanged", min_value=0, max_value=1)
            },
        )
    if rate is None:
        st.caption("Audit: no audited auto-accept image reviewed yet for this version.")
    else:
        st.caption(f"Audit: {audited} predictions auto-accept would have taken were reviewed; {rate:.1%} needed a fix.")


def auto_accept_panel_ui(
    engine: Engine, labels: Sequence[LabelInfo], project_id: int, controls: ReviewControls
) -> tuple[str, str] | None:
    """The "Auto-accept confident predictions" expander; returns (level, message) of what auto-accept did."""
    with st.expander("Auto-accept confident predictions", expanded=False):
        st.caption(
            "Images whose every box clears its class's threshold become annotations without review; a random audit "
            "sample still comes to people (first in the queue) so the real error rate is measured."
        )
        thresholds = thresholds_ui(labels, project_id)
        audit = st.number_input("Audit share", 0.0, 1.0, 0.05, 0.01, key=f"rev_audit_{project_id}")
        if not st.button("Auto-accept now", disabled=not thresholds):
            return None
        with session_scope(engine) as session:
            res = auto_accept(
                session,
                project_id,
                controls.model_version_id,
                thresholds,
                threshold=controls.threshold,
                audit_fraction=float(audit),
            )
    refused = f" {res.refused} not saved, left for review: " + "; ".join(res.problems) if res.refused else ""
    return (
        "warning" if res.refused else "success",
        f"Auto-accepted {res.accepted} images; {res.audit} sent to people as the audit sample; "
        f"{res.left} left for review.{refused}",
    )


QUEUE_TTL_S = 60.0


def cached_queue(
    session: Session, project_id: int, controls: ReviewControls, cache_key: str, decided: set[int]
) -> list[QueueItem]:
    """The review queue for the controls, less the images decided in this browser session.

    The queue (an aggregate over all predictions of the version) is computed when the controls
    change or it is older than QUEUE_TTL_S; between, the next item comes from the cached order,
    checked against the database (first_open), so a decision shows the next item at once even
    with 100,000 predictions, and an image someone else reviewed meanwhile is skipped.
    """
    queue_key = (controls.model_version_id, controls.threshold, controls.order, controls.flt)
    cached = st.session_state.get(cache_key)
    if cached is None or cached[0] != queue_key or time.monotonic() - cached[1] > QUEUE_TTL_S:
        full = shared_review_queue(
            session.get_bind(),  # type: ignore[arg-type]
            project_id,
            controls.model_version_id,
            controls.threshold,
            controls.order,
            controls.flt,
        )
        st.session_state[cache_key] = (queue_key, time.monotonic(), full)
        decided.clear()
    else:
        full = cached[2]
    return [q for q in full if q.image_id not in decided]


def item_header_ui(item: ReviewItem, entry: QueueItem, to_review: int) -> None:
    """The item's line (name, queue length, scores) and what else the model called its boxes."""
    st.markdown(
        f"**{item.state.name}** · {to_review} to review · top score {entry.top_score:.2f} ({entry.top_label}) · "
        f"margin {entry.margin:.2f} · {entry.below} box(es) under the threshold"
        + (" · :orange[audit sample]" if entry.audit else "")
    )
    hint = alternatives_hint(item)
    if hint:  # before the buttons: Accept keeps the box's shown label, not the others
        st.markdown(f":orange[{hint}]")


@dataclass(frozen=True)
class ReviewActions:
    """Which decision button was pressed in this run (None: none of them) and whether Skip was."""

    decision: str | None
    skip: bool

    def apply(
        self, session: Session, item: ReviewItem, edited: list[tuple[str, Box]], who: str, tolerance: float
    ) -> ReviewResult:
        """Records the decision on the item (see core.review.decisions)."""
        if self.decision == "accept":
            return accept(session, item, who)
        if self.decision == "save":
            return correct(session, item, edited, who, tolerance=tolerance)
        if self.decision == "no_garments":
            return no_garments(session, item, who)
        return reject(session, item, who)


def review_actions_ui() -> ReviewActions:
    """The decision buttons with their keys: accept, save corrections, reject, skip, no garments."""
    # Accept and Save take a row each: side by side in this column "Save corrections" was cut to "Save correc…".
    do_accept = st.button("Accept as is", type="primary", shortcut="A", width="stretch")
    do_save = st.button("Save corrections", shortcut="S", width="stretch")
    c3, c4 = st.columns(2)
    do_reject = c3.button("Reject image", shortcut="X", width="stretch", help="Back to the Annotate queue")
    do_skip = c4.button("Skip", shortcut="K", width="stretch", help="Next item; nothing recorded")
    do_none = st.button(
        "No garments in this image",
        shortcut="Shift+N",
        width="stretch",
        help="Done with no boxes: every prediction is recorded as a false positive",
    )
    pressed = {"accept": do_accept, "save": do_save, "no_garments": do_none, "reject": do_reject}
    return ReviewActions(next((name for name, on in pressed.items() if on), None), do_skip)


def prediction_boxes(item: ReviewItem, labels: Sequence[LabelInfo]) -> list[CanvasBox]:
    """The item's predictions as canvas boxes, each labelled with its score in its label's colour."""
    colours = {lab.name: lab.colour for lab in labels}
    return [
        CanvasBox(scored_label(p.label, p.score), p.box, colours.get(p.label, "#808080"), True)
        for p in item.predictions
    ]


def canvas_labels(edited: list[tuple[str, Box]], labels: Sequence[LabelInfo]) -> list[tuple[str, Box]]:
    """The canvas boxes with their scores stripped and their labels resolved.

    A relabel typed as a number or in another case becomes the label's name, as on Annotate.
    """
    out = []
    for text, box in edited:
        found = resolve_label(strip_score(text), labels)
        out.append((found.name if found else strip_score(text), box))
    return out
