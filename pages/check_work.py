"""Check work (reviewers): images annotators finished wait here while the project's review stage is on.

Accept one and it counts as ground truth (export, training); return it with a comment and its
annotator sees it first on Annotate, the comment beside the canvas.
"""

from __future__ import annotations

import streamlit as st
from PIL import Image as PILImage
from PIL import ImageDraw
from sqlalchemy import select

from core.accounts.review_stage import ReviewStageError, accept, pending, return_to_annotator, stage_on
from core.project.imagestore import ImageStore
from db.engine import session_scope
from db.models import BoxRow, Image, Label
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
    image = session.get(Image, image_id)
    boxes = session.execute(
        select(Label.name, Label.colour, BoxRow.x_min, BoxRow.y_min, BoxRow.x_max, BoxRow.y_max)
        .join(Label, Label.id == BoxRow.label_id)
        .where(BoxRow.image_id == image_id)
    ).all()
    status, width, display_path = image.status.value, image.width, image.display_path

picture = PILImage.open(ImageStore(ctx.settings.data_dir).path(display_path)).convert("RGB")
scale = picture.width / width
draw = ImageDraw.Draw(picture)
for label, colour, x0, y0, x1, y1 in boxes:
    draw.rectangle([x0 * scale, y0 * scale, x1 * scale, y1 * scale], outline=colour, width=3)
    draw.text((x0 * scale + 3, y0 * scale + 2), label, fill=colour)

left, right = st.columns([7, 3], gap="medium")
left.image(picture, caption=f"{name}: {len(boxes)} boxes ({status})")
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
