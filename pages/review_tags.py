"""Review tags: people check the tags model's least sure suggestions, one key each, and the answers become tags.

The queue (core.review.tags.tags_queue) lists the open suggestions of one tags model version,
the audit sample first, then lowest calibrated confidence first. A (accept) stores the
suggested value, E stores the 'Change to' value (the model's runner-up unless chosen), K skips
(nothing stored). Each decision is a ReviewDecision row; the stored tag is ground truth.
"""

from __future__ import annotations

import streamlit as st

from core.project.imagestore import ImageStore
from core.review.errors import ReviewError
from core.review.tags import decide_tag, has_tag_predictions, tags_queue, tags_versions
from db.engine import session_scope
from db.queries import attribute_schema, display_paths
from ui.context import current_user, get_context, require_project
from ui.review_tags_panels import suggestion_ui, tag_auto_accept_ui, tag_controls_ui, tag_summary_ui

ctx = get_context()
st.title("Review tags")
project_id = require_project()
who = current_user()
FLASH_KEY = f"revt_flash_{project_id}"

with session_scope(ctx.engine) as session:
    versions = tags_versions(session, project_id)
    schema = attribute_schema(session, project_id)
    session.expunge_all()
if not versions:
    st.info("No tags model yet: train one on the Train page, then run it over the images to get suggestions.")
    st.stop()
heads = {t: list(vs) for t, vs in (versions[0].params or {}).get("heads", schema).items()}
controls = tag_controls_ui(versions, heads, project_id)
chosen_version = next(v for v in versions if v.id == controls.model_version_id)
heads = {t: list(vs) for t, vs in (chosen_version.params or {}).get("heads", schema).items()}

outcome = tag_auto_accept_ui(ctx.engine, project_id, controls.model_version_id, heads)
if outcome is not None:
    st.session_state[FLASH_KEY] = outcome
    st.rerun()

with session_scope(ctx.engine) as session:
    queue = tags_queue(session, project_id, controls.model_version_id, tags=controls.tags, values=controls.values)
    item = queue[0] if queue else None
    display_path = display_paths(session, [item.image_id]).get(item.image_id) if item else None
    predicted = item is not None or has_tag_predictions(session, controls.model_version_id)

flash = st.session_state.get(FLASH_KEY)
if flash:
    getattr(st, flash[0])(flash[1])
if item is None and not predicted:
    st.info(f"{chosen_version.name} has no suggestions yet: run it over the images (predict) first.")
    st.stop()
if item is None:
    st.success("No open tag suggestions for this model version and these filters.")
    with st.expander("Decisions so far", expanded=True):
        tag_summary_ui(ctx.engine, project_id)
    st.stop()

st.caption(f"{len(queue)} open suggestion(s) · {item.image_name}")
left, right = st.columns([3, 2], gap="medium")
with left:
    st.image(str(ImageStore(ctx.settings.data_dir).path(display_path)), width=460)
with right:
    actions = suggestion_ui(item, schema.get(item.tag, heads.get(item.tag, [])))

if actions.decision is not None:
    try:
        with session_scope(ctx.engine) as session:
            message = decide_tag(
                session,
                project_id,
                controls.model_version_id,
                item.image_id,
                item.tag,
                actions.decision,
                who,
                chosen=actions.chosen,
            )
    except ReviewError as exc:
        st.session_state[FLASH_KEY] = ("error", str(exc))
    else:
        st.session_state[FLASH_KEY] = ("success", message)
    st.rerun()

if st.toggle("Show decision summary (per tag and model version)", key="revt_show_summary"):
    tag_summary_ui(ctx.engine, project_id)
