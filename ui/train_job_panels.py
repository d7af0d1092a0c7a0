"""Widgets of the Train page under the form: the training job (progress, curves, outcome) and the model versions."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from core.jobs import JobError, cancel
from core.model.training import TrainingError, resume_params, start_training
from core.settings import Settings
from db.engine import session_scope
from db.models import JobStatus, ModelKind
from db.queries import model_versions
from ui.jobs import JobSnapshot
from ui.train_panels import minutes_text, stopped_text, val_map_chart


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


def training_running_ui(engine: Engine, job_id: int, job: JobSnapshot) -> None:
    """A queued or running training (drawn by the polled fragment): progress, metrics, cancel, curves."""
    progress = job.progress
    st.subheader(f"Training job #{job_id}: {job.status.value}")
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
        with session_scope(engine) as session:
            try:
                cancel(session, job_id)
            except JobError as exc:
                st.error(str(exc))
        st.rerun()
    curves_ui(progress)


def training_done_ui(
    engine: Engine, settings: Settings, project_id: int, job_id: int, job: JobSnapshot, job_key: str
) -> None:
    """A finished training: its outcome (and a resume button when it did not succeed), then its curves."""
    st.subheader(f"Training job #{job_id}: {job.status.value}")
    result = job.result
    if job.status is JobStatus.SUCCEEDED and result:
        st.success(
            f"Finished: model version #{result['model_version_id']} · mAP@0.5 "
            + (f"{result['map50']:.3f}" if result.get("map50") is not None else "not measured (no validation images)")
            + (f". {why}" if (why := stopped_text(result, job.params)) else "")
        )
    else:
        st.error(f"Training {job.status.value}. {job.error or ''}")
        if st.button("Resume from the last checkpoint", key=f"resume_{job_id}"):
            try:
                with session_scope(engine) as session:
                    params = resume_params(session, job_id)
                new_id = start_training(engine, settings, project_id, params)
                st.session_state[job_key] = new_id
                st.rerun()
            except (TrainingError, JobError) as exc:
                st.error(str(exc))
    curves_ui(job.progress)


STOPPED = {"budget": "budget spent", "early": "early stopping", None: "all epochs"}


def versions_ui(engine: Engine, project_id: int) -> int | None:
    """The project's model versions with their validation metrics; the chosen one's settings and per-class AP.

    The table holds what compares versions; how each was trained goes beside its per-class
    AP below it: all fifteen columns in one table ran off the right edge of a laptop window.
    Returns the chosen version's id (None without versions).
    """
    with session_scope(engine) as session:
        versions = [v for v in model_versions(session, project_id) if v.kind is ModelKind.DETECTOR]
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
        return None
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
    return chosen
