"""Widgets of the Review page: scored canvas labels, queue controls, predict and auto-accept panels, summaries."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import streamlit as st
from sqlalchemy import Engine, select

from core.annotate.state import LabelInfo
from core.jobs import JobError, reap_stale
from core.model.prediction import JOB_KIND, predict_params, start_prediction
from core.review.item import ReviewItem
from core.review.queue import DEFAULT_THRESHOLD, ORDERS, ReviewQueueFilter
from core.review.summaries import audit_error_rate, decision_summary
from core.settings import Settings
from db.engine import session_scope
from db.models import Job, JobStatus, ModelVersion

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
    """The project's model versions, newest first, as id -> display name."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(ModelVersion.id, ModelVersion.name).where(ModelVersion.project_id == project_id)
            .order_by(ModelVersion.id.desc())
        ).all()  # fmt: skip
    return {vid: f"#{vid} {name}" for vid, name in rows}


def review_controls_ui(
    versions: dict[int, str], default_version: int, labels: Sequence[LabelInfo], project_id: int
) -> ReviewControls:
    """Sidebar: model version, threshold, queue order and filters."""
    sb = st.sidebar
    ids = list(versions)
    version = sb.selectbox(
        "Model version under review", ids, index=ids.index(default_version), format_func=versions.__getitem__,
        key=f"rev_version_{project_id}",
    )  # fmt: skip
    threshold = sb.slider(
        "Confidence threshold", 0.0, 1.0, DEFAULT_THRESHOLD, 0.05, key=f"rev_threshold_{project_id}",
        help="Boxes at or above it are drawn on the canvas; the rest count as 'under the threshold'.",
    )  # fmt: skip
    order = sb.radio("Queue order", list(ORDERS), format_func=ORDERS.__getitem__, key=f"rev_order_{project_id}")
    names = {lab.id: lab.name for lab in labels}
    with sb.expander("Queue filters", expanded=False):
        label_ids = st.multiselect(
            "Has a predicted box labelled", list(names), format_func=names.__getitem__, key=f"rev_f_label_{project_id}",
            placeholder="any label",
        )  # fmt: skip
        main = st.multiselect(
            "Main garment (auto-tag)", [lab.name for lab in labels], key=f"rev_f_main_{project_id}", placeholder="any"
        )
        lo, hi = st.slider("Top score between", 0.0, 1.0, (0.0, 1.0), 0.05, key=f"rev_f_score_{project_id}")
    return ReviewControls(
        int(version), float(threshold), str(order), ReviewQueueFilter(tuple(label_ids), lo, hi, tuple(main))
    )


def _active_predict_job(engine: Engine, project_id: int) -> Job | None:
    with session_scope(engine) as session:
        reap_stale(session)
        job = session.scalar(
            select(Job).where(Job.project_id == project_id, Job.kind == JOB_KIND).order_by(Job.id.desc()).limit(1)
        )
        if job is not None:
            session.expunge(job)
        return job


@st.fragment(run_every=1.0)
def _predict_progress_ui(engine: Engine, project_id: int) -> None:
    job = _active_predict_job(engine, project_id)
    if job is None:
        return
    p = job.progress or {}
    done, total = p.get("done", 0) or 0, p.get("total") or 0
    if job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
        st.progress(min(done / total, 1.0) if total else 0.0, text=f"Predicting… {p.get('message', '')}")
    else:
        if job.status is JobStatus.SUCCEEDED:
            st.success(f"Prediction job #{job.id} finished: {job.result}")
        else:
            st.error(f"Prediction job #{job.id} {job.status.value}: {job.error or ''}")
        st.rerun()  # the whole page: the queue has changed


def predict_panel_ui(
    engine: Engine, settings: Settings, project_id: int, versions: dict[int, str], who: str, selected: int | None = None
) -> None:
    """Run a model version over the project's images as a background job, with progress.

    ``selected`` (the version under review) is the one offered first.
    """
    job = _active_predict_job(engine, project_id)
    if job is not None and job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
        _predict_progress_ui(engine, project_id)
        return
    if job is not None and job.status is JobStatus.FAILED:
        st.caption(f"Last prediction job #{job.id} failed: {job.error}")
    if not versions:
        st.info("No model version yet: train one on the Train page.")
        return
    with st.form("predict_form"):
        c1, c2 = st.columns(2)
        ids = list(versions)
        version = c1.selectbox(
            "Model version", ids, index=ids.index(selected) if selected in versions else 0,
            format_func=versions.__getitem__,
        )  # fmt: skip
        which = c2.selectbox(
            "Images", ["unlabelled", "all", "split:train", "split:val", "split:test"],
            help="unlabelled = status new (never annotated). Earlier versions' predictions are kept.",
        )  # fmt: skip
        go = st.form_submit_button("Predict", type="primary")
    if go:
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
        frame, hide_index=True, disabled=["class"], key=f"rev_thresholds_{project_id}",
        column_config={"auto-accept at or above": st.column_config.NumberColumn(min_value=0.0, max_value=1.0, step=0.05)},
    )  # fmt: skip
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
        columns = ["version", "class", "reviewed", "accepted_share", "accepted", "moved", "relabelled", "deleted",
                   "added", "rejected", "auto_accepted"]  # fmt: skip
        frame = pd.DataFrame(rows).reindex(columns=columns).fillna({c: 0 for c in columns[4:]})
        st.dataframe(
            frame, hide_index=True, width="stretch",
            column_config={"accepted_share": st.column_config.ProgressColumn("accepted unchanged", min_value=0, max_value=1)},
        )  # fmt: skip
    if rate is None:
        st.caption("Audit: no audited auto-accept image reviewed yet for this version.")
    else:
        st.caption(f"Audit: {audited} predictions auto-accept would have taken were reviewed; {rate:.1%} needed a fix.")
