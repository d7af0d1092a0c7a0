"""Train: start a detector training as a background job, watch it, compare model versions.

The job runs in a detached worker (core.model.training.train_job), so closing the browser or
restarting the server does not stop it; this page only reads the job table.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st
from sqlalchemy import select

from core.jobs import JobError, cancel, reap_stale
from core.model.pretrained.offline_weights import cache_dir_for, is_prepared
from core.model.training import (
    DEFAULTS,
    JOB_KIND,
    TrainingError,
    fit_geometry,
    resume_params,
    start_training,
    train_params,
)
from db.engine import session_scope
from db.models import Job, JobStatus, ModelVersion
from db.queries import images_by_split
from ui.context import current_project_id, current_user, get_context
from ui.train_panels import (
    ALPHAS,
    OFFLINE_IMAGENET,
    advanced_ui,
    budget_ui,
    estimate_text,
    geometry_ui,
    minutes_text,
    prepare_weights_ui,
    stopped_text,
    training_data,
    val_map_chart,
    weights_ui,
)

ctx = get_context()
st.title("Train")
project_id = current_project_id()
if project_id is None:
    st.info("Create a project on the Home page first.")
    st.stop()


def active_job() -> tuple[int, JobStatus] | None:
    """The project's queued or running training job, if any (after reaping stale ones)."""
    with session_scope(ctx.engine) as session:
        reap_stale(session)
        job = session.scalar(
            select(Job)
            .where(
                Job.project_id == project_id,
                Job.kind == JOB_KIND,
                Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)),
            )
            .order_by(Job.id.desc())
        )
        return (job.id, job.status) if job else None


def start_form_ui() -> None:
    """The 'new training' form; launches the job and remembers its id.

    Plain widgets, not an st.form: the budget's estimate and what "auto" resolves to
    follow the user's choices as they make them.
    """
    offline_ready = is_prepared(cache_dir_for(ctx.settings.data_dir))
    with session_scope(ctx.engine) as session:
        splits = images_by_split(session, project_id)
        data = training_data(session, project_id)
        fit = fit_geometry(session, project_id)
    st.caption(
        "Training uses the project's finished images (done / no objects), exported as TFRecords exactly like "
        f"the Export page does. Images per split now: {', '.join(f'{k} {v}' for k, v in splits.items()) or 'none'}."
    )
    c1, c2, c3 = st.columns(3)
    budget = budget_ui(c1)
    estimate = c1.empty()
    size = geometry_ui(c2, fit)
    alpha = c3.selectbox("Backbone width (MobileNetV2 alpha)", ALPHAS, index=ALPHAS.index(DEFAULTS["alpha"]))
    weights_choice, weights_file = weights_ui(ctx.settings, float(alpha), offline_ready)
    with session_scope(ctx.engine) as session:
        prepare_weights_ui(session, offline_ready)
    advanced = advanced_ui()
    if budget:
        chosen = (*(size or (fit.image_width, fit.image_height)), float(alpha))
        estimate.caption(estimate_text(budget, data, advanced["epochs"], chosen))
    if not st.button("Start training", type="primary"):
        return
    if not budget:
        st.error("Give a time budget in minutes.")
        return
    weights = weights_choice
    if weights_choice == "file":
        if not weights_file.strip():
            st.error("Give the path of a weights file, or choose another initial weights option.")
            return
        weights = weights_file.strip()
    elif weights_choice == OFFLINE_IMAGENET and not offline_ready:
        st.error("The offline ImageNet weights are not prepared yet: prepare them first, or choose another option.")
        return
    elif weights_choice == OFFLINE_IMAGENET and float(alpha) != 1.0:
        st.error("The offline ImageNet weights exist for backbone width 1.0 only.")
        return
    geometry = {"image_width": size[0], "image_height": size[1]} if size else {}
    params = train_params(
        project_id, budget_minutes=float(budget), alpha=float(alpha), weights=weights, who=current_user(),
        **advanced, **geometry,
    )  # fmt: skip
    try:
        job_id = start_training(ctx.engine, ctx.settings, project_id, params)
    except JobError as exc:
        st.error(str(exc))
        return
    st.session_state[f"train_job_{project_id}"] = job_id
    st.rerun()


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    m, s = divmod(int(seconds), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"


def curves_ui(progress: dict) -> None:
    """Loss curve (per step) and validation mAP (per evaluated epoch)."""
    curve = progress.get("curve") or []
    history = progress.get("history") or []
    c1, c2 = st.columns(2)
    if curve:
        c1.caption("Training loss (running mean within each epoch)")
        c1.line_chart(pd.DataFrame(curve, columns=["step", "loss"]).set_index("step"), height=220)
    val = [(h["epoch"], h["val_map50"]) for h in history if h.get("val_map50") is not None]
    if val:
        c2.caption("Validation mAP@0.5")
        c2.altair_chart(val_map_chart(val), width="stretch")


@st.fragment(run_every=2.0)
def job_ui() -> None:
    """Polls the latest training job of this project: progress, curves, cancel, outcome."""
    key = f"train_job_{project_id}"
    with session_scope(ctx.engine) as session:
        reap_stale(session)
        job = session.get(Job, st.session_state[key]) if st.session_state.get(key) else None
        if job is None:
            job = session.scalar(
                select(Job).where(Job.project_id == project_id, Job.kind == JOB_KIND).order_by(Job.id.desc())
            )
        if job is None:
            return
        job_id, status, progress, result, error = job.id, job.status, dict(job.progress or {}), job.result, job.error
        params = dict(job.params or {})
    st.subheader(f"Training job #{job_id}: {status.value}")
    if not status.is_final:
        # Inside the polled fragment and without the status (the subheader says it): outside, the
        # message kept saying "queued" for the whole run, as only the fragment reruns.
        st.info("A new training can start when this one ends: one training per project at a time.")
        budget_s = progress.get("budget_s")
        done, total = progress.get("done") or 0, progress.get("total") or 0
        if budget_s and progress.get("elapsed_s") is not None:
            # Under a budget the step count is an estimate; the time spent is the honest bar.
            fraction = min(progress["elapsed_s"] / budget_s, 1.0)
        else:
            fraction = min(done / total, 1.0) if total else 0.0
        st.progress(fraction, text=progress.get("message") or "starting…")
        c = st.columns(5)
        approx = "≈" if budget_s else ""
        c[0].metric("Epoch", f"{progress.get('epoch', '–')}/{approx}{progress.get('epochs', '–')}")
        c[1].metric("Step", f"{progress.get('step', 0)}/{approx}{progress.get('steps', '–')}")
        loss = progress.get("loss")
        c[2].metric("Loss", f"{loss:.3f}" if isinstance(loss, (int, float)) else "–")
        c[3].metric("Images/s", f"{progress.get('images_per_s', 0):.1f}")
        if budget_s:
            c[4].metric("Time", f"{minutes_text(progress.get('elapsed_s'))} of {minutes_text(budget_s)} min")
        else:
            c[4].metric("ETA", _fmt_eta(progress.get("eta_s")))
        if st.button("Cancel training", key=f"cancel_{job_id}"):
            with session_scope(ctx.engine) as session:
                try:
                    cancel(session, job_id)
                except JobError as exc:
                    st.error(str(exc))
            st.rerun()
    elif status is JobStatus.SUCCEEDED and result:
        st.success(
            f"Finished: model version #{result['model_version_id']} · mAP@0.5 "
            + (f"{result['map50']:.3f}" if result.get("map50") is not None else "not measured (no validation images)")
            + (f". {why}" if (why := stopped_text(result, params)) else "")
        )
        if st.session_state.get(f"shown_{job_id}") is None:  # refresh the model list once, outside the fragment
            st.session_state[f"shown_{job_id}"] = True
            st.rerun(scope="app")
    else:
        st.error(f"Training {status.value}. {error or ''}")
        if st.button("Resume from the last checkpoint", key=f"resume_{job_id}"):
            try:
                with session_scope(ctx.engine) as session:
                    params = resume_params(session, job_id)
                new_id = start_training(ctx.engine, ctx.settings, project_id, params)
                st.session_state[key] = new_id
                st.rerun()
            except (TrainingError, JobError) as exc:
                st.error(str(exc))
    curves_ui(progress)


STOPPED = {"budget": "budget spent", "early": "early stopping", None: "all epochs"}


def versions_ui() -> None:
    """The project's model versions with their validation metrics; the chosen one's settings and per-class AP.

    The table holds what compares versions; how each was trained goes beside its per-class
    AP below it: all fifteen columns in one table ran off the right edge of a laptop window.
    """
    with session_scope(ctx.engine) as session:
        versions = list(
            session.scalars(
                select(ModelVersion).where(ModelVersion.project_id == project_id).order_by(ModelVersion.id.desc())
            )
        )
        rows = [
            {
                "id": v.id,
                "name": v.name,
                "created (UTC)": v.created_at.strftime("%Y-%m-%d %H:%M"),
                "mAP@0.5 (val)": (v.metrics.get("val") or {}).get("map50"),
                "mAP@0.5 (test)": (v.metrics.get("test") or {}).get("map50"),
                "best epoch": v.metrics.get("best_epoch"),
                "epochs run": len(v.metrics["history"]) if "history" in v.metrics else None,
                "stopped": STOPPED.get(v.metrics["stopped"], v.metrics["stopped"]) if "stopped" in v.metrics else None,
                "train time (min)": round(v.metrics["train_seconds"] / 60, 1)
                if v.metrics.get("train_seconds")
                else None,
            }
            for v in versions
        ]
        settings = {
            v.id: {
                "budget (min)": v.params.get("budget_minutes"),
                "max epochs": v.params.get("epochs"),
                "input": f"{v.params.get('image_width')}x{v.params.get('image_height')}",
                "weights": v.params.get("weights"),
                "train images": (v.params.get("images") or {}).get("train"),
                "dataset": v.dataset_hash[:12],
            }
            for v in versions
        }
        per_class = {v.id: (v.metrics.get("ap50") or {}) for v in versions}
    st.header("Model versions")
    if not rows:
        st.caption("No model yet: start a training above.")
        return
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        column_config={
            "mAP@0.5 (val)": st.column_config.NumberColumn("val mAP@0.5", format="%.3f"),
            "mAP@0.5 (test)": st.column_config.NumberColumn("test mAP@0.5", format="%.3f"),
            "train time (min)": st.column_config.NumberColumn("time (min)", help="Training time in minutes"),
        },
    )
    chosen = st.selectbox(
        "Settings and per-class AP@0.5 of",
        [r["id"] for r in rows],
        format_func=lambda i: next(r["name"] for r in rows if r["id"] == i),
    )
    c1, c2 = st.columns(2)
    c1.dataframe(
        pd.DataFrame([{"setting": k, "value": "" if v is None else str(v)} for k, v in settings[chosen].items()]),
        hide_index=True,
        width="content",
    )
    ap = per_class.get(chosen) or {}
    if ap:
        df = pd.DataFrame([{"class": k, "AP@0.5": v} for k, v in ap.items()])
        c2.dataframe(df, hide_index=True, width="content")
        c2.caption("Empty AP: the evaluation split has no box of that class.")


# Reviewed images (Review page) are ground truth like hand-annotated ones: say how many the
# next training gets that the newest model has not seen.
with session_scope(ctx.engine) as _session:
    from core.review.summaries import reviewed_since_last_model

    _new_reviewed = reviewed_since_last_model(_session, project_id)
if _new_reviewed:
    st.info(f"{_new_reviewed} reviewed image(s) are new since the last model; a new training will learn from them.")
else:
    st.caption("No reviewed images since the last model.")

active = active_job()
if active is None:
    with st.expander("New training", expanded=True):
        start_form_ui()
else:
    st.session_state[f"train_job_{project_id}"] = active[0]  # the job below is the one that blocks the form
job_ui()
versions_ui()
