"""The Train page's tags-model side: what it learns from, the start form, the running job and its outcome."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core.jobs import JobError, cancel, reap_stale
from core.model.tags.data import TagsDataError, load_tags_data
from core.model.tags.jobs import DEFAULTS, MAX_MEMBERS, TRAIN_KIND, tags_resume_params, tags_train_params
from db.engine import read_scope, session_scope
from db.models import Job, JobStatus
from db.queries import latest_job
from ui.context import current_user, get_context
from ui.jobs import JobSnapshot, job_progress_ui, start_job

MODEL_KINDS = {"detector": "Detector (boxes)", "tags": "Tags (category and attributes per image)"}
BALANCE = {
    "weights": "loss weights toward the median value count",
    "oversample": "oversample rare values of the main tag",
    "none": "none",
}


def model_kind_ui() -> str:
    """The model to train: ``"detector"`` or ``"tags"``."""
    return st.radio(
        "Model",
        list(MODEL_KINDS),
        format_func=MODEL_KINDS.__getitem__,
        horizontal=True,
        key="train_model_kind",
    )


def data_summary_ui(project_id: int) -> bool:
    """What the tags model would learn from (heads, values, tagged images per split); False when nothing."""
    ctx = get_context()
    with read_scope(ctx.engine) as session:
        try:
            data = load_tags_data(session, project_id, ctx.settings.data_dir, assign_splits=False)
        except TagsDataError as exc:
            st.warning(str(exc))
            return False
    known = data.known_per_head()
    rows = [{"tag": t, "values": len(v), "images tagged": known[t]} for t, v in data.heads.items()]
    rows += [{"tag": t, "values": 0, "images tagged": 0, "why no head": why} for t, why in data.left_out.items()]
    st.caption(
        f"{len(data.image_ids)} images have at least one stored tag (schema defaults and machine tags do not count; "
        "an image without a category takes its largest box's label). Images without a split get one when training starts."
    )
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    return True


def start_form_ui(project_id: int, job_key: str) -> None:
    """Budget, balancing and the advanced settings; starts a detached train-tags job."""
    c1, c2, c3 = st.columns(3)
    budget = c1.number_input("Time budget (minutes)", 1.0, 600.0, float(DEFAULTS["budget_minutes"]), 1.0)
    balance = c2.selectbox("Class balancing", list(BALANCE), format_func=BALANCE.__getitem__)
    sizes = sorted({160, 224, 288, int(DEFAULTS["image_size"])})
    size = c3.selectbox("Input size (px)", sizes, index=sizes.index(int(DEFAULTS["image_size"])))
    with st.expander("Advanced"):
        a1, a2, a3 = st.columns(3)
        patience = a1.number_input("Early stopping patience (epochs, 0 = off)", 0, 100, int(DEFAULTS["patience"]))
        views = a2.selectbox(
            "Views per training image",
            [1, 2, 4],
            index=[1, 2, 4].index(int(DEFAULTS["views"])),
            help="1: as is; 2: and mirrored; "
            "4: and two random crops, one mirrored (no colour changes, so colour tags keep their meaning)",
        )
        lr = a3.number_input("Learning rate", 1e-5, 1e-2, float(DEFAULTS["learning_rate"]), format="%.5f")
        members = a1.number_input(
            "Models averaged",
            1,
            MAX_MEMBERS,
            int(DEFAULTS["members"]),
            help="Tops trained one after the other (different seeds) on the one feature pass, sharing the budget; "
            "their outputs are averaged. More is usually a little more accurate; prediction takes a little longer",
        )
        flip = st.checkbox(
            "Predict from the image and its mirror (averaged)",
            value=bool(DEFAULTS["flip_average"]),
            help="Usually a little more accurate; prediction takes twice as long",
        )
    if not st.button("Start tags training", type="primary"):
        return
    params = tags_train_params(
        project_id,
        budget_minutes=float(budget),
        balance=balance,
        image_size=int(size),
        patience=int(patience),
        views=int(views),
        learning_rate=float(lr),
        flip_average=bool(flip),
        members=int(members),
        who=current_user(),
    )
    job_id = start_job(TRAIN_KIND, params, project_id, exclusive=True)
    if job_id is not None:
        st.session_state[job_key] = job_id
        st.rerun()


def _curves_ui(progress: dict[str, Any]) -> None:
    curve = progress.get("curve") or []
    history = progress.get("history") or []
    c1, c2 = st.columns(2)
    if curve:
        c1.caption("Training loss")
        c1.line_chart(pd.DataFrame(curve, columns=["step", "loss"]).set_index("step"), height=200)
    val = [(h["epoch"], h["val_top1"]) for h in history if h.get("val_top1") is not None]
    if val:
        c2.caption("Validation top-1 (main tag)")
        c2.line_chart(pd.DataFrame(val, columns=["epoch", "top-1"]).set_index("epoch"), height=200)


def _running_ui(job_id: int, job: JobSnapshot) -> None:
    ctx = get_context()
    p = job.progress
    st.subheader(f"Tags training job #{job_id}: {job.status.value}")
    budget_s, elapsed = p.get("budget_s"), p.get("elapsed_s")
    fraction = min(elapsed / budget_s, 1.0) if budget_s and elapsed is not None else 0.0
    st.progress(fraction, text=p.get("message") or "starting…")
    if st.button("Cancel training", key=f"cancel_tags_{job_id}"):
        with session_scope(ctx.engine) as session:
            try:
                cancel(session, job_id)
            except JobError as exc:
                st.error(str(exc))
        st.rerun()
    _curves_ui(p)


def _done_ui(project_id: int, job_id: int, job: JobSnapshot, job_key: str) -> None:
    ctx = get_context()
    st.subheader(f"Tags training job #{job_id}: {job.status.value}")
    r = job.result
    if job.status is JobStatus.SUCCEEDED and r:
        figures = [f"top-1 {r['top1']:.3f}" if r.get("top1") is not None else "no test or validation images"]
        if r.get("top5") is not None:
            figures.append(f"top-5 {r['top5']:.3f}")
        if r.get("ece_after") is not None:
            figures.append(f"calibration error {r['ece_after']:.3f}")
        st.success(
            f"Finished: tags model version #{r['model_version_id']} · {' · '.join(figures)} "
            f"(best epoch {r.get('best_epoch')}, stopped: {r.get('stopped') or 'all epochs'}). "
            "The Evaluate page shows it per tag."
        )
    else:
        st.error(f"Tags training {job.status.value}. {job.error or ''}")
        if st.button("Resume from the last checkpoint", key=f"resume_tags_{job_id}"):
            try:
                with session_scope(ctx.engine) as session:
                    params = tags_resume_params(session, job_id)
            except JobError as exc:
                st.error(str(exc))
                return
            new_id = start_job(TRAIN_KIND, params, project_id, exclusive=True)
            if new_id is not None:
                st.session_state[job_key] = new_id
                st.rerun()
    _curves_ui(job.progress)


def tags_train_ui(project_id: int) -> None:
    """The whole tags side of the Train page."""
    ctx = get_context()
    job_key = f"train_tags_job_{project_id}"
    with session_scope(ctx.engine) as session:
        reap_stale(session)
        active = latest_job(session, TRAIN_KIND, project_id, active=True)
        active_id = active.id if active else None
    if active_id is None:
        with st.expander("New tags training", expanded=True):
            if data_summary_ui(project_id):
                start_form_ui(project_id, job_key)
    else:
        st.session_state[job_key] = active_id
    with session_scope(ctx.engine) as session:
        job = session.get(Job, st.session_state[job_key]) if st.session_state.get(job_key) else None
        job = job or latest_job(session, TRAIN_KIND, project_id)
        job_id = job.id if job is not None else None
    if job_id is not None:
        job_progress_ui(
            job_id,
            running_ui=lambda snap: _running_ui(job_id, snap),
            done_ui=lambda snap: _done_ui(project_id, job_id, snap, job_key),
            run_every=2.0,
        )
