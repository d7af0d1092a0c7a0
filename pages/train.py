"""Train: start a detector (or tags model) training as a background job, watch it, compare model versions.

The job runs in a detached worker (core.model.training.train_job), so closing the browser or
restarting the server does not stop it; this page only reads the job table.
"""

from __future__ import annotations

import streamlit as st

from core.jobs import JobError, reap_stale
from core.model.pretrained.offline_weights import cache_dir_for, is_prepared
from core.model.training import (
    DEFAULTS,
    JOB_KIND,
    fit_geometry,
    start_training,
    train_params,
)
from core.project.splits import exportable_per_split
from db.engine import session_scope
from db.queries import followed_job, latest_job
from ui.auth import require_role
from ui.context import current_user, get_context, require_project
from ui.export_model_panels import deployment_ui
from ui.jobs import job_progress_ui
from ui.train_job_panels import training_done_ui, training_running_ui, versions_ui
from ui.train_panels import (
    OFFLINE_IMAGENET,
    advanced_ui,
    budget_ui,
    estimate_text,
    geometry_ui,
    prepare_weights_ui,
    training_data,
    weights_ui,
)

# The page's "auto" fit reads about this many images (the job fits on all): see fit_geometry.
FIT_SAMPLE_IMAGES = 1000

ctx = get_context()
st.title("Train")
project_id = require_project()
JOB_KEY = f"train_job_{project_id}"

from ui.tags_train_panels import model_kind_ui, tags_train_ui  # noqa: E402

if model_kind_ui() == "tags":
    tags_train_ui(project_id)
    st.stop()


def active_job() -> int | None:
    """The project's queued or running training job, if any (after reaping stale ones)."""
    with session_scope(ctx.engine) as session:
        reap_stale(session)
        job = latest_job(session, JOB_KIND, project_id, active=True)
        return job.id if job else None


def job_ui() -> None:
    """The training job this page follows (else the project's latest): live while it runs, then its outcome."""
    with session_scope(ctx.engine) as session:
        job = followed_job(session, JOB_KIND, project_id, st.session_state.get(JOB_KEY))
        job_id = job.id if job is not None else None
    job_progress_ui(
        job_id,
        running_ui=lambda job: training_running_ui(ctx.engine, job_id, job),
        done_ui=lambda job: training_done_ui(ctx.engine, ctx.settings, project_id, job_id, job, JOB_KEY),
        run_every=2.0,
    )


def start_form_ui() -> None:
    """The 'new training' form; launches the job and remembers its id.

    Plain widgets, not an st.form: the budget's estimate and what "auto" resolves to
    follow the user's choices as they make them.
    """
    offline_ready = is_prepared(cache_dir_for(ctx.settings.data_dir))
    with session_scope(ctx.engine) as session:
        splits = {
            (k.value if k else "not yet assigned"): n for k, n in exportable_per_split(session, project_id).items()
        }
        data = training_data(session, project_id)
        fit = fit_geometry(session, project_id, sample_images=FIT_SAMPLE_IMAGES)
    st.caption(
        "Trains on the project's finished images (done / no objects), exported as TFRecords like the Export page "
        f"does. Finished images per split now: {', '.join(f'{k} {v}' for k, v in splits.items()) or 'none'}."
    )
    # Drawn in this order on screen, filled in the order the values are needed: the weights'
    # caption and the estimate depend on the backbone width chosen under Advanced. The Start
    # button (and, until they exist, the one preparing the offline weights) sits above Advanced
    # so that it shows in a laptop window without scrolling.
    c1, c2, c3 = st.columns(3)
    estimate = st.empty()
    start_slot, prepare_slot = st.columns([1, 3])
    advanced = advanced_ui()
    budget = budget_ui(c1)
    size = geometry_ui(c2, fit)
    alpha = advanced["alpha"]
    weights_choice, weights_file = weights_ui(c3, ctx.settings, alpha, offline_ready)
    with session_scope(ctx.engine) as session:
        prepare_weights_ui(session, offline_ready, button_at=prepare_slot)
    if budget:
        chosen = (*(size or (fit.image_width, fit.image_height)), alpha, DEFAULTS["pyramid_width"])
        estimate.caption(estimate_text(budget, data, advanced["epochs"], chosen))
    if not start_slot.button("Start training", type="primary"):
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
    elif weights_choice == OFFLINE_IMAGENET and alpha != 1.0:
        st.error("The offline ImageNet weights exist for backbone width 1.0 only.")
        return
    geometry = {"image_width": size[0], "image_height": size[1]} if size else {}
    params = train_params(
        project_id,
        budget_minutes=float(budget),
        weights=weights,
        who=current_user(),
        **advanced,
        **geometry,
    )
    require_role("train.run")
    try:
        job_id = start_training(ctx.engine, ctx.settings, project_id, params)
    except JobError as exc:
        st.error(str(exc))
        return
    st.session_state[JOB_KEY] = job_id
    st.rerun()


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
    st.session_state[JOB_KEY] = active  # the job below is the one that blocks the form
job_ui()
chosen_version = versions_ui(ctx.engine, project_id)
if chosen_version is not None:
    deployment_ui(ctx.engine, ctx.settings, project_id, chosen_version)
