"""Annotate: draw, edit and label boxes on one image at a time, then save and move on.

The page keeps, per browser session, the image it shows and the revision and boxes it
loaded. A save names that revision, so a second tab's stale save is refused (see
``core/annotate/save.py``). Moving to another image saves unsaved changes first, so a box
is never dropped by navigating away.
"""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from core.annotate.errors import AnnotationError, StaleRevisionError
from core.annotate.matching import has_changes, match_boxes
from core.annotate.queue import QueueEntry, find_in_queue, neighbour, next_to_do, progress
from core.annotate.save import copy_boxes, save_boxes
from core.annotate.state import DraftBox, project_labels
from core.project.imagestore import ImageStore
from core.review.tags import image_suggestions, record_saved_suggestions, shown_attributes
from db.engine import session_scope
from db.queries import attribute_schema
from ui.annotate_panels import (
    accept_tags_ui,
    attributes_ui,
    box_table_ui,
    canvas_help_ui,
    canvas_width_ui,
    changes_ui,
    draft_canvas_boxes,
    history_toggle_ui,
    image_actions_ui,
    image_header_ui,
    keys_and_jump_ui,
    label_picker_ui,
    queue_filter_ui,
)
from ui.annotate_state import clear_flash, flash, flash_ui, load_current
from ui.canvas import canvas_ui, image_geometry
from ui.context import current_user, get_context, require_project
from ui.work_panels import may_save_ui, queue_viewer, returned_comment_ui

ctx = get_context()
st.title("Annotate")
project_id = require_project()
who = current_user()

IMAGE_KEY = f"ann_image_{project_id}"
LOADED_KEY = f"ann_loaded_{project_id}"
JUMP_KEY = f"ann_jump_{project_id}"
JUMP_PENDING = f"ann_jump_pending_{project_id}"

# ---------------------------------------------------------------- read what the page shows
with session_scope(ctx.engine) as session:
    schema = attribute_schema(session, project_id)
    labels = project_labels(session, project_id)
flt = queue_filter_ui(labels, project_id)
canvas_w = canvas_width_ui()
with session_scope(ctx.engine) as session:
    flt = replace(flt, viewer=queue_viewer(session, project_id))  # returned, mine, unassigned first
    prog = progress(session, project_id, who)

st.progress(
    prog.done / prog.total if prog.total else 0.0,
    text=f"Done {prog.done} / {prog.total} · mine today {prog.mine_today}",
)
flash_ui()
if not labels and not schema:  # a project with tags but no box labels (classification) is tagged here
    st.warning("This project has no labels yet: add some on the Home page.")
    st.stop()
current = load_current(ctx.engine, project_id, flt, IMAGE_KEY, LOADED_KEY)
if current is None:
    st.info("No images match the filters." if flt.narrows else "No images yet: add some on 'Add images'.")
    st.stop()

place, fresh, loaded = current
state = loaded.state
with session_scope(ctx.engine) as session:
    tags_version, suggested = image_suggestions(session, project_id, state.id)

# ---------------------------------------------------------------- layout
store = ImageStore(ctx.settings.data_dir)
display_path = store.path(state.display_path)
geometry = image_geometry(store, state.display_path, state.width, state.height, canvas_w)

image_header_ui(fresh, loaded.revision, place.pos, place.count)

left, right = st.columns([7, 3], gap="medium")
with right:
    returned_comment_ui(state.id)
    actions = image_actions_ui(place.pos, place.count)
    current_label = label_picker_ui(labels, project_id)
    attrs = attributes_ui(schema, state, loaded.revision, suggested)
    accept_tags = accept_tags_ui(suggested)
    keys_and_jump_ui(JUMP_KEY, JUMP_PENDING)

with left:
    start_boxes = loaded.draft if loaded.draft is not None else [DraftBox(b.label, b.box, b.id) for b in state.boxes]
    stored_by_id = {b.id: b for b in state.boxes}
    canvas_boxes = draft_canvas_boxes(start_boxes, stored_by_id, labels)
    canvas_key = f"ann_canvas_{state.id}_r{loaded.revision}_n{loaded.nonce}"
    # A keyed container per load: the component keeps its state per DOM node, so a reload starts clean.
    with st.container(key=f"{canvas_key}_box"):
        edited = canvas_ui(geometry, display_path, canvas_boxes, current_label.name, current_label.colour, canvas_key)
    drafts = match_boxes(state.boxes, edited, geometry.unchanged_tolerance)
    canvas_help_ui()

stored_attrs = shown_attributes(schema, state.attributes, suggested)  # stored tags, suggestions pre-selected
dirty = has_changes(state.boxes, drafts) or attrs != stored_attrs


def do_save(no_objects: bool = False) -> bool:
    """Saves the canvas; on a conflict reloads the saved version. True when saved."""
    if not may_save_ui(state.id):
        return False
    try:
        with session_scope(ctx.engine) as session:
            result = save_boxes(
                session, state.id, loaded.revision, drafts, who, no_objects=no_objects, attributes=attrs
            )
            if tags_version is not None:
                record_saved_suggestions(session, tags_version, suggested, attrs, who)
    except StaleRevisionError as exc:
        flash("error", str(exc))
        st.session_state.pop(LOADED_KEY, None)  # reload: the canvas key changes with the revision
        return False
    except AnnotationError as exc:
        flash("error", str(exc))
        return False
    flash("success", f"{state.name}: {result.summary}")
    st.session_state.pop(LOADED_KEY, None)
    return True


def go_to(image_id: int) -> None:
    """Saves unsaved work, then moves to another image (stays when the save was refused)."""
    if dirty and not do_save():
        return
    st.session_state[IMAGE_KEY] = image_id
    st.session_state.pop(LOADED_KEY, None)


def step(direction: int) -> QueueEntry | None:
    """The queue entry before (-1) or after (1) the shown one, read from the database (keyset)."""
    with session_scope(ctx.engine) as session:
        return neighbour(session, project_id, flt, place.entry, direction)


jump = st.session_state.pop(JUMP_PENDING, False)
action = actions.any or jump or accept_tags
if action:
    clear_flash()  # a new action replaces the previous action's messages
if actions.save or accept_tags:
    do_save()
elif actions.no_garments:
    if drafts:
        flash("error", f"'No garments' needs an image without boxes; the canvas has {len(drafts)}: delete them first.")
    else:
        do_save(no_objects=True)
elif actions.prev or actions.nxt:
    target = step(-1 if actions.prev else 1)
    if target is not None:  # None: the queue changed under us and this is now the end
        go_to(target.id)
elif actions.next_todo:
    with session_scope(ctx.engine) as session:
        target = next_to_do(session, project_id, flt, after=place.entry)
    if target is None:
        flash("info", "No new or in-progress image left in this queue.")
    else:
        go_to(target.id)
elif actions.copy_prev and (previous := step(-1)) is not None:
    with session_scope(ctx.engine) as session:
        copied = copy_boxes(session, previous.id, state.width, state.height)
    if copied:
        loaded.draft = [*drafts, *copied]
        loaded.nonce += 1
        flash("info", f"Added {len(copied)} box(es) from {previous.name}; not saved yet.")
    else:
        flash("info", f"{previous.name} has no boxes to copy.")
elif actions.discard:
    st.session_state.pop(LOADED_KEY, None)
    flash("info", "Unsaved changes discarded; showing the saved version.")
elif jump:
    with session_scope(ctx.engine) as session:
        found = find_in_queue(session, project_id, flt, st.session_state.get(JUMP_KEY, ""))
    if found is None:
        flash("warning", f"No image in this queue matches {st.session_state.get(JUMP_KEY, '')!r}.")
    else:
        go_to(found.id)
if action:
    st.rerun()  # before drawing the rest: the rerun shows the new state

with left:
    changes_ui(drafts, stored_by_id, state.boxes, dirty, attrs != stored_attrs, geometry)
    box_table_ui(drafts, stored_by_id, labels)

history_toggle_ui(ctx.engine, state.id)
