"""Review: people check what the model is unsure about, fix it in place, and the fixes become ground truth.

The queue (core.review.queue.review_queue) lists the new images with predictions of one model
version, most uncertain first. Each item opens with the predicted boxes at or above the
threshold on the canvas (the Annotate page's canvas, labels with scores); the reviewer
moves, resizes, relabels, deletes or adds boxes and then accepts as is (A), saves the
corrections (S), rejects the image (X) or says it has no garments (Shift+N, as on Annotate).
An item with nothing on the canvas (every prediction under the threshold) is not saved by A or S:
that would record "no garments" by accident. Saving goes through core.annotate.save.save_boxes,
so a second tab's stale save is refused, and the next item appears at once.
"""

from __future__ import annotations

import time

import streamlit as st

from core.annotate.errors import AnnotationError, StaleRevisionError
from core.annotate.state import project_labels
from core.project.imagestore import ImageStore
from core.review.decisions import match_predictions
from core.review.errors import NothingShownError, ReviewError
from core.review.item import ReviewItem, load_review_item
from core.review.queue import first_open, has_predictions, latest_version_with_predictions
from db.engine import session_scope
from ui.annotate_panels import box_table_ui, canvas_width_ui, label_picker_ui
from ui.canvas import canvas_ui, image_geometry
from ui.context import current_user, get_context, require_project
from ui.review_panels import (
    auto_accept_panel_ui,
    cached_queue,
    canvas_labels,
    item_header_ui,
    predict_panel_ui,
    prediction_boxes,
    review_actions_ui,
    review_controls_ui,
    summary_ui,
    versions_with_names,
)

ctx = get_context()
st.title("Review")
project_id = require_project()
who = current_user()
ITEM_KEY = f"rev_item_{project_id}"
QUEUE_KEY = f"rev_queue_{project_id}"
DECIDED_KEY = f"rev_decided_{project_id}"
# The outcome of the last action stays on screen until the next one: the canvas reruns the
# page once it mounts, and a message shown for one run only would vanish before it is read.
FLASH_KEY = f"rev_flash_{project_id}"

versions = versions_with_names(ctx.engine, project_id)
with session_scope(ctx.engine) as session:
    default_version = latest_version_with_predictions(session, project_id)
    labels = project_labels(session, project_id)
controls = review_controls_ui(versions, default_version, labels, project_id) if default_version else None
with session_scope(ctx.engine) as session:
    unpredicted = controls is None or not has_predictions(session, controls.model_version_id)
# Open while the chosen version has nothing to review: predicting is the only thing to do
# here then, and the message below sends people to this panel.
with st.expander("Predict with a model version", expanded=unpredicted):
    predict_panel_ui(
        ctx.engine, ctx.settings, project_id, versions, who, selected=controls.model_version_id if controls else None
    )
if controls is None:
    if versions:  # without one, the open panel already says to train one first
        st.info("No predictions yet: run a model version over the images in 'Predict with a model version' above.")
    st.stop()
if unpredicted:
    st.info(
        f"{versions[controls.model_version_id]} has no predictions yet: run it over the images in "
        "'Predict with a model version' above, or choose another version in the sidebar."
    )
    st.stop()

canvas_w = canvas_width_ui()

outcome = auto_accept_panel_ui(ctx.engine, labels, project_id, controls)
if outcome is not None:
    st.session_state[FLASH_KEY] = outcome
    st.session_state.pop(ITEM_KEY, None)
    st.session_state.pop(QUEUE_KEY, None)
    st.rerun()

t0 = time.perf_counter()
decided: set[int] = st.session_state.setdefault(DECIDED_KEY, set())
with session_scope(ctx.engine) as session:
    queue = cached_queue(session, project_id, controls, QUEUE_KEY, decided)
    item: ReviewItem | None = st.session_state.get(ITEM_KEY)
    ids = [q.image_id for q in queue]
    if (
        item is None
        or item.state.id not in ids
        or item.model_version_id != controls.model_version_id
        or item.threshold != controls.threshold
    ):
        nxt = first_open(session, controls.model_version_id, ids)
        item = load_review_item(session, nxt, controls.model_version_id, controls.threshold) if nxt else None
        st.session_state[ITEM_KEY] = item
        st.session_state["rev_mounts"] = st.session_state.get("rev_mounts", 0) + 1
server_ms = (time.perf_counter() - t0) * 1000

flash = st.session_state.get(FLASH_KEY)
if flash:
    getattr(st, flash[0])(flash[1])
if item is None:
    st.success("Nothing left to review for this model version and these filters.")
    with st.expander("Decisions so far", expanded=True):
        summary_ui(ctx.engine, project_id, controls.model_version_id)
    st.stop()

entry = queue[ids.index(item.state.id)]
state = item.state
store = ImageStore(ctx.settings.data_dir)
geometry = image_geometry(store, state.display_path, state.width, state.height, canvas_w)
item_header_ui(item, entry, len(queue))

left, right = st.columns([7, 3], gap="medium")
with right:
    actions = review_actions_ui()  # the decisions first (as on Annotate), then the labels for new boxes
    current_label = label_picker_ui(labels, project_id)
    st.caption(
        "Keys: A accept · S save corrections · X reject · K skip · Shift+N no garments · 1–9 label for new boxes."
    )
    st.caption(f"Server time for this item: {server_ms:.0f} ms")

with left:
    boxes = prediction_boxes(item, labels)
    key = f"rev_canvas_{state.id}_v{item.model_version_id}_n{st.session_state.get('rev_mounts', 0)}"
    with st.container(key=f"{key}_box"):
        edited_raw = canvas_ui(
            geometry, store.path(state.display_path), boxes, current_label.name, current_label.colour, key
        )
    edited = canvas_labels(edited_raw, labels)
    st.caption(
        f"{len(item.predictions)} predicted box(es) at or above {item.threshold:.2f} are on the canvas "
        f"({item.hidden} hidden below it). Fix them in place: pencil toggle to move, resize, delete or relabel; "
        "drag to add a missed garment."
    )
    box_table_ui(
        match_predictions(item.predictions, edited, geometry.unchanged_tolerance),
        {p.id: p for p in item.predictions},
        labels,
    )


def finish(message: str) -> None:
    decided.add(state.id)
    st.session_state[FLASH_KEY] = ("success", f"{state.name}: {message}")
    st.session_state.pop(ITEM_KEY, None)
    st.rerun()


if actions.decision is not None:
    try:
        with session_scope(ctx.engine) as session:
            res = actions.apply(session, item, edited, who, tolerance=geometry.unchanged_tolerance)
    except NothingShownError as exc:  # nothing was saved; the same item stays, the message above it
        st.session_state[FLASH_KEY] = ("warning", str(exc))
        st.rerun()
    except (StaleRevisionError, ReviewError) as exc:
        st.session_state[FLASH_KEY] = ("error", str(exc))
        st.session_state.pop(ITEM_KEY, None)
        st.rerun()
    except AnnotationError as exc:  # nothing was saved; the item and the canvas stay, the message above them
        st.session_state[FLASH_KEY] = ("error", str(exc))
        st.rerun()
    else:
        counts = ", ".join(f"{n} {k}" for k, n in sorted(res.decisions.items())) or "no boxes"
        finish(f"{counts}. {res.summary}")
elif actions.skip:
    pos = ids.index(state.id)
    nxt = ids[(pos + 1) % len(ids)]
    with session_scope(ctx.engine) as session:
        st.session_state[ITEM_KEY] = load_review_item(session, nxt, controls.model_version_id, controls.threshold)
    st.session_state["rev_mounts"] = st.session_state.get("rev_mounts", 0) + 1
    st.session_state.pop(FLASH_KEY, None)  # it was about the image left behind, not the next one
    st.rerun()

if st.toggle("Show decision summary (per class and model version)", key="rev_show_summary"):
    summary_ui(ctx.engine, project_id, controls.model_version_id)
