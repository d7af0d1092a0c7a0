"""The Evaluate page's tags-model tab: versions side by side, then one version's figures per tag.

Everything shown is stored on the version by its training (``metrics["test"]``, else ``["val"]``) or
by a later ``evaluate-tags`` job; nothing is computed here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st
from sqlalchemy import select

from core.model.tags.jobs import EVALUATE_KIND
from db.engine import session_scope
from db.models import JobStatus, ModelKind, ModelVersion
from db.queries import image_names, latest_job
from ui.context import get_context
from ui.evaluate_panels import table_ui
from ui.jobs import JobSnapshot, job_progress_ui, start_job


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def tags_versions(project_id: int) -> list[tuple[int, str, dict[str, Any]]]:
    """(id, name, metrics) of the project's tags versions, newest first."""
    ctx = get_context()
    with session_scope(ctx.engine) as session:
        rows = session.execute(
            select(ModelVersion.id, ModelVersion.name, ModelVersion.metrics)
            .where(ModelVersion.project_id == project_id, ModelVersion.kind == ModelKind.TAGS)
            .order_by(ModelVersion.id.desc())
        ).all()
    return [(i, n, m or {}) for i, n, m in rows]


def _curves_chart(rows: list[dict[str, Any]], x: str, y: str, diagonal: bool = False) -> alt.Chart:
    df = pd.DataFrame(rows, columns=["value", x, y])
    chart = (
        alt.Chart(df)
        .mark_line()
        .encode(
            x=alt.X(f"{x}:Q", scale=alt.Scale(domain=[0, 1])),
            y=alt.Y(f"{y}:Q", scale=alt.Scale(domain=[0, 1])),
            color="value:N",
            tooltip=["value", x, y],
        )
    )
    if diagonal:
        line = alt.Chart(pd.DataFrame({x: [0, 1], y: [0, 1]})).mark_line(strokeDash=[4, 4], color="grey")
        chart = line.encode(x=f"{x}:Q", y=f"{y}:Q") + chart
    return chart.properties(height=300).interactive()


def _confusion_chart(matrix: list[list[int]], values: list[str]) -> alt.Chart:
    df = pd.DataFrame(
        [
            {"true": values[i], "predicted": values[j], "images": n}
            for i, row in enumerate(matrix)
            for j, n in enumerate(row)
        ]
    )
    base = alt.Chart(df).encode(x=alt.X("predicted:N", sort=values), y=alt.Y("true:N", sort=values))
    heat = base.mark_rect().encode(
        color=alt.Color("images:Q", scale=alt.Scale(scheme="blues")), tooltip=["true", "predicted", "images"]
    )
    text = base.mark_text(fontSize=10).encode(
        text=alt.condition(alt.datum.images > 0, "images:Q", alt.value("")),
        color=alt.condition(alt.datum.images > max(df["images"].max(), 1) / 2, alt.value("white"), alt.value("black")),
    )
    return (heat + text).properties(height=26 * len(values) + 40)


def _reliability_chart(head: dict[str, Any]) -> alt.Chart:
    rows = []
    for when in ("before", "after"):
        r = head[f"reliability_{when}"]
        for conf, acc, n in zip(r["confidence"], r["accuracy"], r["count"], strict=True):
            if n:
                rows.append({"calibration": when, "confidence": conf, "accuracy": acc, "images": n})
    df = pd.DataFrame(rows, columns=["calibration", "confidence", "accuracy", "images"])
    ideal = alt.Chart(pd.DataFrame({"confidence": [0, 1], "accuracy": [0, 1]})).mark_line(
        strokeDash=[4, 4], color="grey"
    )
    points = (
        alt.Chart(df)
        .mark_line(point=True)
        .encode(
            x=alt.X("confidence:Q", scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1])),
            color="calibration:N",
            tooltip=["calibration", "confidence", "accuracy", "images"],
        )
    )
    return (ideal.encode(x="confidence:Q", y="accuracy:Q") + points).properties(height=300)


def head_ui(
    version_id: int, tag: str, head: dict[str, Any], open_image: Callable[[int], None], split: str = "test"
) -> None:
    """One head of one version on ``split``: figures, per-value table, confusion, curves, reliability, worst confusions."""
    c = st.columns(5)
    c[0].metric("Top-1", _fmt(head["top1"]))
    c[1].metric("Top-5", _fmt(head["top5"]))
    c[2].metric("Balanced accuracy", _fmt(head["balanced_accuracy"]))
    c[3].metric("ECE before", _fmt(head["ece_before"]))
    c[4].metric("ECE after", _fmt(head["ece_after"]), help=f"temperature {head['temperature']:.2f}")
    per_value = pd.DataFrame(
        [
            {
                "value": k["value"],
                "images": k["support"],
                "precision": k["precision"],
                "recall": k["recall"],
                "average precision": k["average_precision"],
                "ROC AUC": k["roc_auc"],
            }
            for k in head["classes"]
        ]
    )
    left, right = st.columns(2)
    with left:
        st.caption(f"Per value ({head['images']} {split} images with a known {tag})")
        table_ui(per_value, f"{tag} per value", f"tags_{version_id}_{tag}_values")
    with right:
        st.caption("Confusion matrix (true down, predicted across)")
        st.altair_chart(_confusion_chart(head["confusion"], head["values"]), width="stretch")
    c1, c2, c3 = st.columns(3)
    pr = [
        {"value": k["value"], "recall": r, "precision": p}
        for k in head["classes"]
        for r, p in zip(k["pr"]["recall"], k["pr"]["precision"], strict=True)
    ]
    roc = [
        {"value": k["value"], "false positive rate": f, "true positive rate": t}
        for k in head["classes"]
        for f, t in zip(k["roc"]["fpr"], k["roc"]["tpr"], strict=True)
    ]
    with c1:
        st.caption("Precision-recall, one value against the rest")
        st.altair_chart(_curves_chart(pr, "recall", "precision"), width="stretch")
    with c2:
        st.caption("ROC, one value against the rest")
        st.altair_chart(_curves_chart(roc, "false positive rate", "true positive rate", diagonal=True), width="stretch")
    with c3:
        st.caption("Reliability: accuracy per confidence bin (the dashed line is perfect)")
        st.altair_chart(_reliability_chart(head), width="stretch")
    pairs = head["confused_pairs"]
    st.subheader("Most confused")
    if not pairs:
        st.success(f"No confusion on the {split} images.")
        return
    ctx = get_context()
    with session_scope(ctx.engine) as session:
        # One query names both lists' images.
        to_check = head.get("labels_to_check") or []
        names = image_names(session, {i for p in pairs for i in p["examples"]} | {i["image_id"] for i in to_check})
    for n, p in enumerate(pairs):
        c = st.columns([3, 5], vertical_alignment="center")
        c[0].markdown(f"**{p['true']} → {p['predicted']}** · {p['count']} ({p['share_of_true']:.0%} of {p['true']})")
        with c[1]:
            cols = st.columns(max(len(p["examples"]), 1))
            for k, image_id in enumerate(p["examples"]):
                if cols[k].button(
                    names.get(image_id, str(image_id))[:18],
                    key=f"tags_open_{version_id}_{tag}_{n}_{k}",
                    help="Open on Annotate",
                ):
                    open_image(image_id)
    labels_to_check_ui(version_id, tag, to_check, names, open_image, split)


def labels_to_check_ui(
    version_id: int,
    tag: str,
    items: list[dict[str, Any]],
    names: dict[int, str],
    open_image: Callable[[int], None],
    split: str = "test",
) -> None:
    """The images whose stored value the model finds least likely: where a wrong label is likeliest.

    Evaluations stored before this list existed have no ``labels_to_check``: nothing is shown for them.
    """
    if not items:
        return
    with st.expander(f"Labels to check · the {len(items)} {split} images whose {tag} the model doubts most"):
        st.caption(
            "Wrong predictions, the stored value the model finds least likely first. A confident contradiction is "
            "often a wrong or inconsistent label rather than the model's mistake: fix it on Annotate and the next "
            "training learns the corrected value."
        )
        for k, item in enumerate(items):
            c = st.columns([3, 3, 2], vertical_alignment="center")
            c[0].markdown(f"**{item['label']}** stored · model says **{item['predicted']}**")
            c[1].caption(f"model {item['confidence']:.2f} · stored value {item['label_probability']:.2f}")
            if c[2].button(
                names.get(item["image_id"], str(item["image_id"]))[:18],
                key=f"tags_check_{version_id}_{tag}_{k}",
                help="Open on Annotate",
            ):
                open_image(item["image_id"])


def tags_evaluation_ui(project_id: int, open_image: Callable[[int], None]) -> None:
    """The Tags models tab."""
    versions = tags_versions(project_id)
    if not versions:
        st.info("No tags model yet: train one on the Train page (Model: Tags).")
        return
    table = pd.DataFrame(
        [
            {
                "id": i,
                "model version": name,
                "evaluated on": m.get("evaluated_on"),
                "top-1": m.get("top1"),
                "top-5": m.get("top5"),
                "ECE before": m.get("ece_before"),
                "ECE after": m.get("ece_after"),
                "mean top-1 over tags": m.get("mean_top1"),
                "best epoch": m.get("best_epoch"),
            }
            for i, name, m in versions
        ]
    )
    st.caption(
        "The main tag (category when the project has one); ECE is the expected calibration error, before "
        "and after the temperature fitted on the validation split."
    )
    table_ui(table, "tags model versions", "tags_versions")
    # Names repeat (every benchmark run is "default"): the id tells versions apart, as in the table.
    names = {i: f"#{i} · {n}" for i, n, _ in versions}
    c1, c2, c3 = st.columns([2, 2, 1], vertical_alignment="bottom")
    chosen = c1.selectbox("Version", list(names), format_func=names.__getitem__, key="tags_eval_version")
    metrics = next(m for i, _, m in versions if i == chosen)
    ctx = get_context()
    with session_scope(ctx.engine) as session:
        running = latest_job(session, EVALUATE_KIND, project_id, active=True)
        running_id = running.id if running else None
    if c3.button("Evaluate again", disabled=running_id is not None, help="On the project's test split as it is now"):
        job_id = start_job(EVALUATE_KIND, {"model_version_id": int(chosen)}, project_id, exclusive=True)
        if job_id is not None:
            st.session_state["tags_eval_job"] = job_id
            st.rerun()

    def done(job: JobSnapshot) -> None:
        if job.status is JobStatus.FAILED:
            st.error(f"Evaluation failed: {job.error}")

    job_progress_ui(
        st.session_state.get("tags_eval_job") or running_id, lambda p: p.get("message") or "…", done_ui=done
    )
    split = metrics.get("evaluated_on")
    per_head = metrics.get(split) if split else None
    if not per_head:
        st.info("This version has no test or validation figures: evaluate it again once the project has test images.")
        return
    tag = c2.selectbox("Tag", list(per_head), key=f"tags_eval_tag_{chosen}")
    st.caption(f"On the {split} split.")
    head_ui(int(chosen), tag, per_head[tag], open_image, split)
