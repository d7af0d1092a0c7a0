"""Check work (reviewers): images annotators finished wait here while the project's review stage is on.

Accept one and it counts as ground truth (export, training); return it with a comment and its
annotator sees it first on Annotate, the comment beside the canvas.
"""

from __future__ import annotations

import streamlit as st
from PIL import Image as PILImage
from PIL import ImageDraw

from core.accounts.review_stage import ReviewStageError, accept, pending, return_to_annotator, stage_on
from core.annotate.state import load_image, project_labels
from core.project.imagestore import ImageStore
from db.engine import session_scope
from ui.auth import require_role
from ui.context import current_user, get_context, require_project

ctx = get_context()
st.title("Check work")
project_id = require_project()

with session_scope(ctx.engine) as session:
    on = stage_on(session, project_id)
    waiting = pending(session, project_id)
if not on:
    st.info("The review stage is off for this project: an admin switches it on under Home → Assign work.")
    st.stop()
if not waiting:
    st.success("Nothing is waiting for review.")
    st.stop()

image_id, name, annotator = waiting[0]
st.caption(f"{len(waiting)} waiting · oldest first · {name} by {annotator or 'unknown'}")
with session_scope(ctx.engine) as session:
    state = load_image(session, image_id)  # the image and its boxes, as Annotate reads them
    colours = {lab.name: lab.colour for lab in project_labels(session, project_id)}

picture = PILImage.open(ImageStore(ctx.settings.data_dir).path(state.display_path)).convert("RGB")
scale = picture.width / state.width
draw = ImageDraw.Draw(picture)
for stored in state.boxes:
    b, colour = stored.box, colours.get(stored.label, "#e6194b")
    draw.rectangle([b.x_min * scale, b.y_min * scale, b.x_max * scale, b.y_max * scale], outline=colour, width=3)
    draw.text((b.x_min * scale + 3, b.y_min * scale + 2), stored.label, fill=colour)

left, right = st.columns([7, 3], gap="medium")
left.image(picture, caption=f"{name}: {len(state.boxes)} boxes ({state.status.value})")
with right:
    if st.button("Accept", type="primary", key=f"accept_{image_id}"):
        require_role("work.review")
        try:
            with session_scope(ctx.engine) as session:
                accept(session, image_id, current_user())
            st.rerun()
        except ReviewStageError as exc:
            st.error(str(exc))
    with st.form(f"return_{image_id}", clear_on_submit=True):
        comment = st.text_area("What to fix", placeholder="e.g. the jacket box cuts the sleeve off")
        if st.form_submit_button("Return to annotator"):
            require_role("work.review")
            try:
                with session_scope(ctx.engine) as session:
                    return_to_annotator(session, image_id, current_user(), comment)
                st.rerun()
            except ReviewStageError as exc:
                st.error(str(exc))
