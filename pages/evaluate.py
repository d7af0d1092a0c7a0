"""Evaluate: how good is each model version, where does it fail, and is the dataset balanced.

Metrics are computed once per model version by the ``evaluate`` job (core/model/evaluation.py)
and stored on the version; this page only reads them (one query) plus the dataset-health
counts (a few grouped queries), so it stays quick on big projects.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.model.evaluation import JOB_KIND, evaluated_versions
from db.engine import session_scope
from db.models import JobStatus
from db.queries import image_names, latest_job
from ui.context import get_context, require_project
from ui.evaluate_panels import (
    bar_chart,
    confusion_chart,
    dataset_health_ui,
    pr_curves_chart,
    table_ui,
    versions_table_ui,
)
from ui.jobs import JobSnapshot, job_progress_ui, start_job
from ui.shared_cache import SHARED_TTL_S, refresh_dataset_health, shared_dataset_health

ctx = get_context()
st.title("Evaluate")
project_id = require_project()


def open_in_annotate(image_id: int) -> None:
    """Opens an image on the Annotate page (its queue filters cleared so the image is in the queue)."""
    st.session_state[f"ann_image_{project_id}"] = image_id
    st.session_state.pop(f"ann_loaded_{project_id}", None)
    for f in ("status", "label", "split"):
        st.session_state[f"ann_f_{f}_{project_id}"] = []
    st.switch_page("pages/annotate.py")


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


with session_scope(ctx.engine) as session:
    versions = evaluated_versions(session, project_id)
    running_job = latest_job(session, JOB_KIND, project_id, active=True)
    running = running_job.id if running_job is not None else None

tab_models, tab_errors, tab_tags, tab_health = st.tabs(
    ["Model versions", "Error gallery", "Tags models", "Dataset health"]
)

# ---------------------------------------------------------------- model versions side by side
with tab_models:
    if not versions:
        st.info("No detector version yet: train one on the Train page. Tags models are on the Tags models tab.")
    not_done = [(i, n) for i, n, r in versions if r is None]
    if not_done:
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        pick = c1.selectbox(
            "Evaluate on the test split",
            [i for i, _ in not_done],
            format_func=dict(not_done).__getitem__,
            help="Predicts the test images (a background job) and computes COCO-style metrics once.",
        )
        if c2.button("Evaluate", type="primary", disabled=running is not None):
            job_id = start_job(JOB_KIND, {"model_version_id": int(pick)}, project_id, exclusive=True)
            if job_id is not None:
                st.session_state["eval_job"] = job_id
                st.rerun()
    job_id = st.session_state.get("eval_job") or running

    def evaluation_done_ui(job: JobSnapshot) -> None:
        if job.status is JobStatus.FAILED:  # stays up until another evaluation starts
            st.error(f"Evaluation failed: {job.error}")
        else:
            st.session_state.pop("eval_job", None)

    job_progress_ui(
        int(job_id) if job_id else None,
        lambda p: p.get("message") or "starting…",
        done_ui=evaluation_done_ui,
        run_every=2.0,
    )

    done = [(i, n, r) for i, n, r in versions if r is not None]
    if done:
        thresholds = done[0][2]["thresholds"]
        threshold = st.select_slider(
            "Score threshold (precision, recall and the confusion matrix)", thresholds, value="0.5", key="eval_thr"
        )
        st.caption(
            "COCO-style metrics on the project's test split as stored now (101-point AP, pycocotools' definitions). "
            "The Train page's mAP@0.5 is Pascal VOC all-point AP on the training snapshot's split, so it can differ."
        )
        versions_table_ui(done, threshold)

        per_class = []
        for _, name, r in done:
            at = r["at"].get(threshold) or {}
            for label in r["labels"]:
                per_class.append(
                    {
                        "model version": name,
                        "class": label,
                        "test boxes": r["gt_counts"].get(label),
                        "AP@0.5": r["ap_50"].get(label),
                        "AP@[.5:.95]": r["ap_50_95"].get(label),
                        "AP@0.75": (r.get("ap_75") or {}).get(label),  # absent from results stored before #20
                        "precision": (at.get("precision") or {}).get(label),
                        "recall": (at.get("recall") or {}).get(label),
                    }
                )
        per_class_df = pd.DataFrame(per_class)
        st.subheader("Per class")
        st.altair_chart(
            bar_chart(per_class_df.dropna(subset=["AP@0.5"]), "class", "AP@0.5", color="model version").encode(
                xOffset="c:N"
            ),
            width="stretch",
        )
        table_ui(per_class_df, "per-class metrics", "per_class_metrics")

        names = {i: n for i, n, _ in done}
        chosen = st.selectbox("Curves and confusion matrix of", list(names), format_func=names.__getitem__)
        result = next(r for i, _, r in done if i == chosen)
        c1, c2 = st.columns(2)
        with c1:
            st.subheader("Precision-recall (IoU 0.5)")
            st.altair_chart(pr_curves_chart(result["curves"]), width="stretch")
        with c2:
            st.subheader(f"Confusion matrix (score ≥ {threshold}, IoU 0.5)")
            matrix = result["at"][threshold]["confusion"]
            st.altair_chart(confusion_chart(matrix, result["labels"]), width="stretch")
            st.caption("Row 'background': false positives. Column 'background': missed boxes.")
        cm = pd.DataFrame(matrix, columns=[*result["labels"], "background"])
        cm.insert(0, "true \\ predicted", [*result["labels"], "background"])
        table_ui(cm, "confusion matrix", f"confusion_v{chosen}_{threshold}")

# ---------------------------------------------------------------- error gallery
with tab_errors:
    done = [(i, n, r) for i, n, r in versions if r is not None]
    if not done:
        st.info("Evaluate a model version first (Model versions tab).")
    else:
        names = {i: n for i, n, _ in done}
        chosen = st.selectbox("Errors of", list(names), format_func=names.__getitem__, key="err_version")
        result = next(r for i, _, r in done if i == chosen)
        errors = result["errors"]
        kinds = {
            "false_positive": "Confident false positives",
            "missed": "Missed boxes",
            "wrong_class": "Wrong class",
        }
        kind = st.radio("Show", list(kinds), format_func=lambda k: f"{kinds[k]} ({len(errors[k])})", horizontal=True)
        items = errors[kind]
        st.caption(
            f"At score ≥ {result['error_threshold']} and IoU 0.5, worst first (most confident; largest for missed boxes)."
            " 'Open' shows the image on the Annotate page to fix its boxes."
        )
        ids = sorted({e["image_id"] for e in items})
        with session_scope(ctx.engine) as session:
            names_by_id = image_names(session, ids)
        df = pd.DataFrame([{"image": names_by_id.get(e["image_id"], "?"), **e} for e in items])
        if df.empty:
            st.success("None at this threshold.")
        else:
            for n, e in enumerate(items[:20]):
                c = st.columns([4, 2, 2, 1], vertical_alignment="center")
                what = f"{e['true_label']} → predicted {e['label']}" if kind == "wrong_class" else e["label"]
                c[0].markdown(f"**{names_by_id.get(e['image_id'], '?')}** · {what}")
                c[1].markdown(f"score {e['score']:.2f}" if "score" in e else f"{e['area']:,} px²")
                c[2].caption(f"box {', '.join(f'{v:.0f}' for v in e['box'])}")
                if c[3].button("Open", key=f"open_{kind}_{n}", icon=":material/edit:"):
                    open_in_annotate(int(e["image_id"]))
            table_ui(df, kinds[kind].lower(), f"errors_{kind}_v{chosen}")

# ---------------------------------------------------------------- tags models
with tab_tags:
    from ui.tags_evaluate_panels import tags_evaluation_ui

    tags_evaluation_ui(project_id, open_in_annotate)

# ---------------------------------------------------------------- dataset health
with tab_health:
    health, charts, computed_at = shared_dataset_health(ctx.engine, project_id)
    c1, c2 = st.columns([4, 1], vertical_alignment="center")
    c1.caption(f"Computed {computed_at:%H:%M:%S} UTC; shared by everyone for up to {SHARED_TTL_S // 60} minutes.")
    if c2.button("Refresh", key="health_refresh", icon=":material/refresh:"):
        refresh_dataset_health()
        st.rerun()
    dataset_health_ui(health, charts)
