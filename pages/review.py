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

from core.annotate.attributes import MACHINE_ATTRIBUTE_PREFIX
from core.annotate.errors import AnnotationError, StaleRevisionError
from core.annotate.state import project_labels, resolve_label
from core.project.imagestore import ImageStore
from core.review.auto_accept import auto_accept
from core.review.decisions import accept, correct, match_predictions, no_garments, reject
from core.review.errors import NothingShownError, ReviewError
from core.review.item import ReviewItem, load_review_item
from core.review.queue import first_open, has_predictions, latest_version_with_predictions, review_queue
from db.engine import session_scope
from ui.annotate_panels import box_table_ui, canvas_width_ui, label_picker_ui
from ui.canvas import CanvasBox, CanvasGeometry, canvas_ui
from ui.context import current_project_id, current_user, get_context
from ui.review_panels import (
    alternatives_hint,
    predict_panel_ui,
    review_controls_ui,
    scored_label,
    strip_score,
    summary_ui,
    thresholds_ui,
    versions_with_names,
)

ctx = get_context()
st.title("Review")
project_id = current_project_id()
if project_id is None:
    st.info("Create a project on the Home page first.")
    st.stop()
who = current_user()
ITEM_KEY = f"rev_item_{project_id}"
QUEUE_KEY = f"rev_queue_{project_id}"
DECIDED_KEY = f"rev_decided_{project_id}"
QUEUE_TTL_S = 60.0
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

with st.expander("Auto-accept confident predictions", expanded=False):
    st.caption(
        "Images whose every box clears its class's threshold become annotations without review; a random audit "
        "sample still comes to people (first in the queue) so the real error rate is measured."
    )
    thresholds = thresholds_ui(labels, project_id)
    audit = st.number_input("Audit share", 0.0, 1.0, 0.05, 0.01, key=f"rev_audit_{project_id}")
    if st.button("Auto-accept now", disabled=not thresholds):
        with session_scope(ctx.engine) as session:
            res = auto_accept(
                session, project_id, controls.model_version_id, thresholds, threshold=controls.threshold,
                audit_fraction=float(audit),
            )  # fmt: skip
        refused = f" {res.refused} not saved, left for review: " + "; ".join(res.problems) if res.refused else ""
        st.session_state[FLASH_KEY] = (
            "warning" if res.refused else "success",
            f"Auto-accepted {res.accepted} images; {res.audit} sent to people as the audit sample; "
            f"{res.left} left for review.{refused}",
        )
        st.session_state.pop(ITEM_KEY, None)
        st.session_state.pop(QUEUE_KEY, None)
        st.rerun()

t0 = time.perf_counter()
# The queue (an aggregate over all predictions of the version) is computed when the controls
# change or it is older than QUEUE_TTL_S; between, the next item comes from the cached order,
# checked against the database (first_open), so a decision shows the next item at once even
# with 100,000 predictions, and an image someone else reviewed meanwhile is skipped.
queue_key = (controls.model_version_id, controls.threshold, controls.order, controls.flt)
cached = st.session_state.get(QUEUE_KEY)
decided: set[int] = st.session_state.setdefault(DECIDED_KEY, set())
with session_scope(ctx.engine) as session:
    if cached is None or cached[0] != queue_key or time.monotonic() - cached[1] > QUEUE_TTL_S:
        full = review_queue(
            session, project_id, controls.model_version_id, threshold=controls.threshold, order=controls.order,
            flt=controls.flt,
        )  # fmt: skip
        st.session_state[QUEUE_KEY] = (queue_key, time.monotonic(), full)
        decided.clear()
    else:
        full = cached[2]
    queue = [q for q in full if q.image_id not in decided]
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
with store.open(state.display_path) as im:
    display_w, display_h = im.size
geometry = CanvasGeometry.for_image(
    state.width, state.height, display_w, display_h, max_w=canvas_w, max_h=round(canvas_w * 0.9)
)
colours = {lab.name: lab.colour for lab in labels}
st.markdown(
    f"**{state.name}** · {len(queue)} to review · top score {entry.top_score:.2f} ({entry.top_label}) · "
    f"margin {entry.margin:.2f} · {entry.below} box(es) under the threshold"
    + (" · :orange[audit sample]" if entry.audit else "")
)
hint = alternatives_hint(item)
if hint:  # before the buttons: Accept keeps the box's shown label, not the others
    st.markdown(f":orange[{hint}]")

left, right = st.columns([7, 3], gap="medium")
with right:
    # The decisions first (as on Annotate), then the labels for new boxes. Accept and Save
    # take a row each: side by side in this column "Save corrections" was cut to "Save correc…".
    do_accept = st.button("Accept as is", type="primary", shortcut="A", width="stretch")
    do_save = st.button("Save corrections", shortcut="S", width="stretch")
    c3, c4 = st.columns(2)
    do_reject = c3.button("Reject image", shortcut="X", width="stretch", help="Back to the Annotate queue")
    do_skip = c4.button("Skip", shortcut="K", width="stretch", help="Next item; nothing recorded")
    do_none = st.button(
        "No garments in this image", shortcut="Shift+N", width="stretch",
        help="Done with no boxes: every prediction is recorded as a false positive",
    )  # fmt: skip
    current_label = label_picker_ui(labels, project_id)
    st.caption(
        "Keys: A accept · S save corrections · X reject · K skip · Shift+N no garments · 1–9 label for new boxes."
    )
    tags = {
        k[len(MACHINE_ATTRIBUTE_PREFIX) :]: v
        for k, v in state.attributes.items()
        if k.startswith(MACHINE_ATTRIBUTE_PREFIX)
    }
    if tags:
        st.markdown("**Auto-tags**")
        st.dataframe(
            [
                {"tag": k, "value": v, "confidence": tags.get(f"{k}_confidence", "")}
                for k, v in tags.items()
                if not k.endswith("_confidence") and k != "model_version"
            ],
            hide_index=True,
            width="stretch",
        )
    st.caption(f"Server time for this item: {server_ms:.0f} ms")

with left:
    boxes = [
        CanvasBox(scored_label(p.label, p.score), p.box, colours.get(p.label, "#808080"), True)
        for p in item.predictions
    ]
    key = f"rev_canvas_{state.id}_v{item.model_version_id}_n{st.session_state.get('rev_mounts', 0)}"
    with st.container(key=f"{key}_box"):
        edited_raw = canvas_ui(
            geometry, store.path(state.display_path), boxes, current_label.name, current_label.colour, key
        )
    # A relabel typed as a number or in another case becomes the label's name, as on Annotate.
    edited = []
    for text, box in edited_raw:
        found = resolve_label(strip_score(text), labels)
        edited.append((found.name if found else strip_score(text), box))
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


if do_accept or do_save or do_reject or do_none:
    try:
        with session_scope(ctx.engine) as session:
            if do_accept:
                res = accept(session, item, who)
            elif do_save:
                res = correct(session, item, edited, who, tolerance=geometry.unchanged_tolerance)
            elif do_none:
                res = no_garments(session, item, who)
            else:
                res = reject(session, item, who)
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
elif do_skip:
    pos = ids.index(state.id)
    nxt = ids[(pos + 1) % len(ids)]
    with session_scope(ctx.engine) as session:
        st.session_state[ITEM_KEY] = load_review_item(session, nxt, controls.model_version_id, controls.threshold)
    st.session_state["rev_mounts"] = st.session_state.get("rev_mounts", 0) + 1
    st.session_state.pop(FLASH_KEY, None)  # it was about the image left behind, not the next one
    st.rerun()

if st.toggle("Show decision summary (per class and model version)", key="rev_show_summary"):
    summary_ui(ctx.engine, project_id, controls.model_version_id)
