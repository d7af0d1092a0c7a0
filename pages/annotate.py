"""Annotate: draw, edit and label boxes on one image at a time, then save and move on.

The page keeps, per browser session, the image it shows and the revision and boxes it
loaded. A save names that revision, so a second tab's stale save is refused (see
``core/annotate/save.py``). Moving to another image saves unsaved changes first, so a box
is never dropped by navigating away.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from core.annotate.attributes import effective_attributes
from core.annotate.errors import AnnotationError, StaleRevisionError
from core.annotate.matching import has_changes, match_boxes
from core.annotate.queue import AnnotationQueueFilter, find_by_name, first_to_do, progress, queue
from core.annotate.save import copy_boxes, save_boxes
from core.annotate.state import DraftBox, ImageState, load_image, project_labels
from core.project.imagestore import ImageStore
from db.engine import session_scope
from db.models import BoxSource, Project
from ui.annotate_panels import (
    attributes_ui,
    box_table_ui,
    canvas_width_ui,
    history_ui,
    import_note_ui,
    label_picker_ui,
    queue_filter_ui,
)
from ui.canvas import CanvasBox, CanvasGeometry, canvas_ui
from ui.context import current_project_id, current_user, get_context

ctx = get_context()
project_id = current_project_id()
if project_id is None:
    st.title("Annotate")
    st.info("Create a project on the Home page first.")
    st.stop()
who = current_user()

IMAGE_KEY = f"ann_image_{project_id}"
LOADED_KEY = f"ann_loaded_{project_id}"
FLASH_KEY = "ann_flash"
FLASH_SECONDS = 60
TINY_CANVAS_PX = 5
JUMP_KEY = f"ann_jump_{project_id}"
JUMP_PENDING = f"ann_jump_pending_{project_id}"


@dataclass
class Loaded:
    """The copy of an image this browser session is editing."""

    image_id: int
    revision: int
    state: ImageState
    nonce: int = 0  # bumped when the page replaces the canvas content (copy, discard)
    draft: list[DraftBox] | None = None  # boxes to start the canvas from instead of the stored ones
    extra: dict[str, Any] = field(default_factory=dict)


def flash(kind: str, message: str) -> None:
    """Queues a message about an action; it stays up until the next action (or FLASH_SECONDS).

    Not "shown once": the canvas reports its layout after mounting, which reruns the page
    right after a save, and a one-shot message would vanish before anyone read it.
    """
    st.session_state.setdefault(FLASH_KEY, []).append((kind, message, time.monotonic()))


# ---------------------------------------------------------------- read what the page shows
with session_scope(ctx.engine) as session:
    project = session.get(Project, project_id)
    schema: dict[str, list[str]] = dict(project.attribute_schema or {}) if project else {}
    labels = project_labels(session, project_id)
flt = queue_filter_ui(labels, project_id)
canvas_w = canvas_width_ui()
with session_scope(ctx.engine) as session:
    entries = queue(session, project_id, flt)
    prog = progress(session, project_id, who)

st.title("Annotate")
st.progress(
    prog.done / prog.total if prog.total else 0.0,
    text=f"Done {prog.done} / {prog.total} · mine today {prog.mine_today}",
)
for kind, message, at in st.session_state.get(FLASH_KEY, []):
    if time.monotonic() - at < FLASH_SECONDS:
        getattr(st, kind)(message)
if not labels:
    st.warning("This project has no labels yet: add some on the Home page.")
    st.stop()
if not entries:
    st.info(
        "No images match the filters." if flt != AnnotationQueueFilter() else "No images yet: add some on 'Add images'."
    )
    st.stop()

ids = [e.id for e in entries]
current = st.session_state.get(IMAGE_KEY)
if current not in ids:
    start = first_to_do(entries) or entries[0]
    current = start.id
    st.session_state[IMAGE_KEY] = current
pos = ids.index(current)

try:
    with session_scope(ctx.engine) as session:
        fresh = load_image(session, current)
except AnnotationError as exc:  # deleted between the queue query and now
    st.session_state.pop(IMAGE_KEY, None)
    st.session_state.pop(LOADED_KEY, None)
    flash("warning", str(exc))
    st.rerun()
loaded: Loaded | None = st.session_state.get(LOADED_KEY)
if loaded is None or loaded.image_id != current:
    # A new mount number per load: "Discard and reload" at the same revision must still
    # remount the canvas, or the component would keep showing the discarded drawing.
    st.session_state["ann_mounts"] = st.session_state.get("ann_mounts", 0) + 1
    loaded = Loaded(image_id=current, revision=fresh.revision, state=fresh, nonce=st.session_state["ann_mounts"])
    st.session_state[LOADED_KEY] = loaded
state = loaded.state

# ---------------------------------------------------------------- layout
store = ImageStore(ctx.settings.data_dir)
display_path = store.path(state.display_path)
with store.open(state.display_path) as im:
    display_w, display_h = im.size
geometry = CanvasGeometry.for_image(
    state.width, state.height, display_w, display_h, max_w=canvas_w, max_h=round(canvas_w * 0.9)
)
label_by_name = {lab.name: lab for lab in labels}

st.markdown(
    f"**{state.name}** · image {pos + 1} of {len(entries)} · {state.width}×{state.height} px · "
    f"status `{fresh.status.value}` · revision {loaded.revision}"
)
import_note_ui(fresh)
if fresh.revision != loaded.revision:
    st.warning(
        f"{fresh.updated_by or 'Someone'} saved this image (revision {fresh.revision}) after you opened it. "
        "Saving now will be refused; press 'Discard and reload' to see their version."
    )

left, right = st.columns([7, 3], gap="medium")
with right:
    # The actions first: below nine label buttons and the attributes they fell under the fold
    # of a 1400x900 laptop window.
    st.markdown("**Image**")
    c1, c2 = st.columns(2)
    save = c1.button("Save", type="primary", shortcut="Ctrl+S", width="stretch", help="Save boxes and attributes")
    no_garments = c2.button(
        "No garments", shortcut="Shift+N", width="stretch",
        help="Mark this image done with zero boxes (different from never opened)",
    )  # fmt: skip
    c3, c4 = st.columns(2)
    prev = c3.button("Previous", shortcut="D", width="stretch", disabled=pos == 0, help="Saves first if needed")
    nxt = c4.button("Next", shortcut="F", width="stretch", disabled=pos == len(entries) - 1, help="Saves first")
    c5, c6 = st.columns(2)
    next_todo = c5.button("Next new", shortcut="Shift+F", width="stretch", help="Next new or in-progress image")
    copy_prev = c6.button(
        "Copy previous", width="stretch", disabled=pos == 0, help="Add the previous image's boxes (scaled to this size)"
    )
    discard = st.button("Discard and reload", width="stretch", help="Drop unsaved changes and show the saved version")
    current_label = label_picker_ui(labels, project_id)
    attrs = attributes_ui(schema, state, loaded.revision)
    # Keys mean the same on Review: Shift+N is "no garments" (a save) on both pages, and no
    # key that only moves here writes there (issue 13: N was "next new" here, "no garments" there).
    st.caption(
        "Keys: 1–9 label · Ctrl+S save · F next · D previous · Shift+F next new image · Shift+N no garments. "
        "Moving on saves first."
    )
    st.text_input("Jump to image (name)", key=JUMP_KEY, on_change=lambda: st.session_state.update({JUMP_PENDING: True}))

with left:
    start_boxes = loaded.draft if loaded.draft is not None else [DraftBox(b.label, b.box, b.id) for b in state.boxes]
    stored_by_id = {b.id: b for b in state.boxes}
    canvas_boxes = [
        CanvasBox(
            d.label,
            d.box,
            label_by_name[d.label].colour if d.label in label_by_name else "#808080",
            from_model=d.box_id in stored_by_id and stored_by_id[d.box_id].source is BoxSource.MODEL,
        )
        for d in start_boxes
    ]
    canvas_key = f"ann_canvas_{state.id}_r{loaded.revision}_n{loaded.nonce}"
    # The component keeps its browser-side state (edit toggle, selection) per parent DOM
    # node; a keyed container per load gives each load its own node, so a reload starts clean.
    with st.container(key=f"{canvas_key}_box"):
        edited = canvas_ui(
            geometry,
            display_path,
            canvas_boxes,
            label=current_label.name,
            colour=current_label.colour,
            key=canvas_key,
        )
    drafts = match_boxes(state.boxes, edited, geometry.unchanged_tolerance)
    st.caption(
        "Drag to draw a box with the current label. Toolbar (hover the image): undo, redo, and the pencil toggle to "
        "move, resize, delete (✕) or relabel a box (click a selected box, type a label name or number)."
    )

stored_attrs = effective_attributes(schema, state.attributes)
dirty = has_changes(state.boxes, drafts) or attrs != stored_attrs


def do_save(no_objects: bool = False) -> bool:
    """Saves the canvas; on a conflict reloads the saved version. True when saved."""
    try:
        with session_scope(ctx.engine) as session:
            result = save_boxes(
                session, state.id, loaded.revision, drafts, who, no_objects=no_objects, attributes=attrs
            )
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


jump = st.session_state.pop(JUMP_PENDING, False)
action = any((save, no_garments, prev, nxt, next_todo, copy_prev, discard, jump))
if action:
    st.session_state[FLASH_KEY] = []  # a new action replaces the previous action's messages
if save:
    do_save()
elif no_garments:
    if drafts:
        flash(
            "error", f"'No garments' needs an image without boxes, but the canvas has {len(drafts)}; delete them first."
        )
    else:
        do_save(no_objects=True)
elif prev:
    go_to(ids[pos - 1])
elif nxt:
    go_to(ids[pos + 1])
elif next_todo:
    target = first_to_do(entries, after=pos)
    if target is None:
        flash("info", "No new or in-progress image left in this queue.")
    else:
        go_to(target.id)
elif copy_prev:
    with session_scope(ctx.engine) as session:
        copied = copy_boxes(session, ids[pos - 1], state.width, state.height)
    if copied:
        loaded.draft = [*drafts, *copied]
        loaded.nonce += 1
        flash("info", f"Added {len(copied)} box(es) from {entries[pos - 1].name}; not saved yet.")
    else:
        flash("info", f"{entries[pos - 1].name} has no boxes to copy.")
elif discard:
    st.session_state.pop(LOADED_KEY, None)
    flash("info", "Unsaved changes discarded; showing the saved version.")
elif jump:
    found = find_by_name(entries, st.session_state.get(JUMP_KEY, ""))
    if found is None:
        flash("warning", f"No image in this queue matches {st.session_state.get(JUMP_KEY, '')!r}.")
    else:
        go_to(found.id)
if action:
    st.rerun()  # before drawing the rest: the rerun shows the new state

with left:
    if dirty:
        n_new = sum(d.box_id is None for d in drafts)
        kept = {d.box_id for d in drafts if d.box_id is not None}
        n_changed = sum(
            d.box_id is not None and (stored_by_id[d.box_id].box != d.box or stored_by_id[d.box_id].label != d.label)
            for d in drafts
        )
        n_deleted = len([b for b in state.boxes if b.id not in kept])
        st.markdown(
            f":orange[**Unsaved changes:** {n_new} new, {n_changed} changed, {n_deleted} deleted"
            f"{', attributes' if attrs != stored_attrs else ''}]"
        )
    else:
        st.markdown(f":green[All changes saved] · {len(drafts)} box(es) on the canvas")
    # The drawing tool leaves a 2x2 px box on a plain click; flag such specks so a stray
    # click is undone instead of saved (they are valid boxes, so the save does not refuse them).
    per_px = geometry.original_per_canvas_px
    specks = [n for n, d in enumerate(drafts, 1) if min(d.box.width, d.box.height) < TINY_CANVAS_PX * per_px]
    if specks:
        st.warning(
            f"Box {', '.join(map(str, specks))} is only a few pixels on screen — a stray click? "
            "Undo it (toolbar) or delete it before saving."
        )
    box_table_ui(drafts, stored_by_id, labels)

# A toggle, not an expander: an expander's content runs on every rerun even when closed.
if st.toggle("Show box history of this image", key="ann_show_history"):
    history_ui(ctx.engine, state.id)
