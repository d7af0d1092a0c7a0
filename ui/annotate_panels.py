"""Widgets beside the annotate canvas: queue filters, label picker, attributes, box list, history."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from core.annotate.attributes import stored_attributes, values_of
from core.annotate.queue import UNASSIGNED, AnnotationQueueFilter
from core.annotate.save import box_history
from core.annotate.state import DraftBox, ImageState, LabelInfo, StoredBox, resolve_label
from core.review.tags import TagSuggestion
from db.engine import session_scope
from db.models import BoxSource, ImageStatus, Split
from ui.canvas import CanvasBox, CanvasGeometry


def queue_filter_ui(labels: Sequence[LabelInfo], project_id: int) -> AnnotationQueueFilter:
    """Sidebar filters for the annotation queue (status, label, split); returns the filter."""
    names = {lab.id: lab.name for lab in labels}
    with st.sidebar.expander("Queue filters", expanded=False):
        statuses = st.multiselect(
            "Status", [s.value for s in ImageStatus], key=f"ann_f_status_{project_id}", placeholder="any status"
        )
        label_ids = st.multiselect(
            "Has a box labelled",
            list(names),
            format_func=names.__getitem__,
            key=f"ann_f_label_{project_id}",
            placeholder="any label",
        )
        splits = st.multiselect(
            "Split", [s.value for s in Split] + [UNASSIGNED], key=f"ann_f_split_{project_id}", placeholder="any split"
        )
    return AnnotationQueueFilter(tuple(ImageStatus(s) for s in statuses), tuple(label_ids), tuple(splits))


# What new boxes get in a project without box labels: no label the save accepts.
NO_LABEL = LabelInfo(0, "(no label)", "#808080")


def _pick(key: str, name: str) -> None:
    st.session_state[key] = name


def label_picker_ui(labels: Sequence[LabelInfo], project_id: int) -> LabelInfo:
    """Label buttons, keys 1 to 9 for the first nine; returns the label new boxes get."""
    if not labels:
        # A tags-only project: nothing to draw with. A box drawn anyway is refused by the save, with why.
        st.caption("No box labels in this project (add some on Home to draw boxes); tag the image below.")
        return NO_LABEL
    key = f"ann_label_{project_id}"
    by_name = {lab.name: lab for lab in labels}
    if st.session_state.get(key) not in by_name:
        st.session_state[key] = labels[0].name
    current = by_name[st.session_state[key]]
    st.markdown(
        f"**Label for new boxes:** <span style='background:{current.colour};padding:0 .5em;border-radius:.3em'>"
        f"&nbsp;</span> {current.name}",
        unsafe_allow_html=True,
    )
    cols = st.columns(2, gap="small")
    for i, lab in enumerate(labels):
        number = i + 1
        cols[i % 2].button(
            lab.name,
            key=f"ann_pick_{project_id}_{lab.id}",
            type="primary" if lab.name == current.name else "secondary",
            shortcut=str(number) if number <= 9 else None,
            on_click=_pick,
            args=(key, lab.name),
            width="stretch",
        )
    return current


def attributes_ui(
    schema: Mapping[str, Sequence[str]],
    state: ImageState,
    revision: int,
    suggestions: Mapping[str, TagSuggestion] | None = None,
) -> dict[str, str]:
    """Image-level tag pickers from the project's schema; returns the tags chosen (unset ones left out).

    A tag shows its stored value; one the image does not store but the tags model suggests starts
    on the suggestion, marked "suggested · 0.87"; the others start unset. Only what is selected is
    stored on save: an untouched tag is unknown, never a default that would pass for ground truth.
    """
    if not schema:
        return {}
    st.markdown("**Image attributes**")
    values = stored_attributes(schema, state.attributes)
    suggested = {t: s for t, s in (suggestions or {}).items() if t in schema and s.value in values_of(schema, t)}
    out: dict[str, str] = {}
    for name in schema:
        title = name.replace("_", " ").capitalize()
        default = values.get(name)
        if default is None and name in suggested:
            title = f"{title} — suggested · {suggested[name].confidence:.2f}"
            default = suggested[name].value
        chosen = st.segmented_control(
            title,
            values_of(schema, name),
            default=default,
            key=f"ann_attr_{state.id}_r{revision}_{name}",
        )
        if chosen is not None:
            out[name] = chosen
    return out


def accept_tags_ui(suggestions: Mapping[str, TagSuggestion]) -> bool:
    """The one key that accepts the pre-selected tag suggestions (it saves the image); False without suggestions."""
    if not suggestions:
        return False
    return st.button(
        f"Accept {len(suggestions)} suggested tag{'s' if len(suggestions) != 1 else ''}",
        shortcut="T",
        width="stretch",
        help="Saves the image with the tags as selected: the suggestions become stored tags",
    )


def box_table_ui(drafts: Sequence[DraftBox], stored: Mapping[int, StoredBox], labels: Sequence[LabelInfo]) -> None:
    """The boxes on the canvas as a table: label, original-pixel corners, source, score, who.

    A label typed on the canvas is shown as the label it resolves to ("3" -> the third),
    or flagged when it matches none (the save will refuse it).
    """
    if not drafts:
        st.caption("No boxes on this image yet.")
        return
    rows = []
    for n, d in enumerate(drafts, start=1):
        s = stored.get(d.box_id) if d.box_id is not None else None
        if s is None:
            source, score, by = "new (unsaved)", None, ""
        elif s.box != d.box or s.label != d.label:
            was_model = s.source is BoxSource.MODEL and s.score is not None
            source = "edited (unsaved)" + (f", was model {s.score:.2f}" if was_model else "")
            score, by = None, s.updated_by or ""
        else:
            source, score, by = s.source.value, s.score, s.updated_by or ""
        b = d.box
        lab = resolve_label(d.label, labels)
        shown = lab.name if lab is not None else f"⚠ unknown {d.label!r}"
        corners = (round(b.x_min, 1), round(b.y_min, 1), round(b.x_max, 1), round(b.y_max, 1))
        rows.append((n, shown, *corners, source, score, by))
    st.dataframe(
        pd.DataFrame(rows, columns=["#", "label", "x_min", "y_min", "x_max", "y_max", "source", "score", "by"]),
        hide_index=True,
        width="stretch",
        height=min(36 + 35 * len(rows), 250),
        column_config={"score": st.column_config.NumberColumn(format="%.2f")},
    )


def history_toggle_ui(engine: Engine, image_id: int) -> None:
    """The box history behind a toggle: not an expander, whose content runs on every rerun even when closed."""
    if st.toggle("Show box history of this image", key="ann_show_history"):
        history_ui(engine, image_id)


def history_ui(engine: Engine, image_id: int) -> None:
    """The image's newest box changes with who and when."""
    with session_scope(engine) as session:
        changes = [
            (
                c.created_at,
                c.who or "",
                c.action,
                c.revision,
                (c.before or {}).get("label", ""),
                (c.after or {}).get("label", ""),
            )
            for c in box_history(session, image_id)
        ]
    if not changes:
        st.caption("No box changes recorded yet.")
        return
    st.dataframe(
        pd.DataFrame(changes, columns=["when (UTC)", "who", "action", "revision", "label before", "label after"]),
        hide_index=True,
        width="stretch",
    )


def canvas_width_ui() -> int:
    """Sidebar choice of the canvas width (the page cannot measure the screen)."""
    return int(
        st.sidebar.select_slider(
            "Canvas width (px)", [480, 560, 640, 720, 800, 960, 1120, 1280], value=640, key="ann_canvas_width"
        )
    )


def import_note_ui(state: ImageState) -> None:
    """One warning line saying why an import left this image to annotate (its boxes were refused).

    Shown only while the image is still to do: once saved, the annotator has dealt with it.
    Long notes are cut to one line; the full text is in the line's help. The note quotes
    file contents (``<bndbox>``, ``(Shirts)``), so Markdown characters are escaped.
    """
    if not state.import_note or state.status not in (ImageStatus.NEW, ImageStatus.IN_PROGRESS):
        return
    note = state.import_note
    short = note if len(note) <= 160 else note[:157] + "…"
    st.caption(f":orange[⚠ {_escape_markdown(short)}]", help=_escape_markdown(note) if short != note else None)


def _escape_markdown(text: str) -> str:
    return "".join(f"\\{c}" if c in "\\`*_{}[]<>()#+-.!|~:$" else c for c in text)


@dataclass(frozen=True)
class AnnotateActions:
    """The image buttons pressed in this run."""

    save: bool
    no_garments: bool
    prev: bool
    nxt: bool
    next_todo: bool
    copy_prev: bool
    discard: bool

    @property
    def any(self) -> bool:
        """Whether any of them was pressed."""
        return any(astuple(self))


def image_actions_ui(pos: int, count: int) -> AnnotateActions:
    """The image buttons with their keys: save, no garments, previous, next, next new, copy previous, discard."""
    # The actions first: below nine label buttons and the attributes they fell under the fold
    # of a 1400x900 laptop window.
    st.markdown("**Image**")
    # Two to a row only for the short labels: with their Shift+ key shown, "No garments" and
    # "Next new" were cut to "No g…" in half a column of a 1400x900 window.
    c1, c2 = st.columns(2)
    save = c1.button("Save", type="primary", shortcut="Ctrl+S", width="stretch", help="Save boxes and attributes")
    nxt = c2.button("Next", shortcut="F", width="stretch", disabled=pos == count - 1, help="Saves first")
    c3, c4 = st.columns(2)
    prev = c3.button("Previous", shortcut="D", width="stretch", disabled=pos == 0, help="Saves first if needed")
    copy_prev = c4.button(
        "Copy previous", width="stretch", disabled=pos == 0, help="Add the previous image's boxes (scaled to this size)"
    )
    no_garments = st.button(
        "No garments in this image",
        shortcut="Shift+N",
        width="stretch",
        help="Mark this image done with zero boxes (different from never opened)",
    )
    next_todo = st.button("Next new image", shortcut="Shift+F", width="stretch", help="Next new or in-progress image")
    discard = st.button("Discard and reload", width="stretch", help="Drop unsaved changes and show the saved version")
    return AnnotateActions(save, no_garments, prev, nxt, next_todo, copy_prev, discard)


def image_header_ui(fresh: ImageState, revision: int, pos: int, count: int) -> None:
    """The image's line (name, place in the queue, size, status, revision), its import note, a newer save."""
    st.markdown(
        f"**{fresh.name}** · image {pos + 1} of {count} · {fresh.width}×{fresh.height} px · "
        f"status `{fresh.status.value}` · revision {revision}"
    )
    import_note_ui(fresh)
    if fresh.revision != revision:
        st.warning(
            f"{fresh.updated_by or 'Someone'} saved this image (revision {fresh.revision}) after you opened it. "
            "Saving now will be refused; press 'Discard and reload' to see their version."
        )


def draft_canvas_boxes(
    drafts: Sequence[DraftBox], stored: Mapping[int, StoredBox], labels: Sequence[LabelInfo]
) -> list[CanvasBox]:
    """The boxes to start the canvas from, in their label's colour, model-made ones marked."""
    colours = {lab.name: lab.colour for lab in labels}
    return [
        CanvasBox(
            d.label,
            d.box,
            colours.get(d.label, "#808080"),
            from_model=d.box_id in stored and stored[d.box_id].source is BoxSource.MODEL,
        )
        for d in drafts
    ]


TINY_CANVAS_PX = 5


def changes_ui(
    drafts: Sequence[DraftBox],
    stored: Mapping[int, StoredBox],
    saved: Sequence[StoredBox],
    dirty: bool,
    attributes_changed: bool,
    geometry: CanvasGeometry,
) -> None:
    """What is not saved yet (boxes new, changed, deleted; attributes), and boxes too small to be meant."""
    if dirty:
        n_new = sum(d.box_id is None for d in drafts)
        kept = {d.box_id for d in drafts if d.box_id is not None}
        n_changed = sum(
            d.box_id is not None and (stored[d.box_id].box != d.box or stored[d.box_id].label != d.label)
            for d in drafts
        )
        n_deleted = len([b for b in saved if b.id not in kept])
        st.markdown(
            f":orange[**Unsaved changes:** {n_new} new, {n_changed} changed, {n_deleted} deleted"
            f"{', attributes' if attributes_changed else ''}]"
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


def canvas_help_ui() -> None:
    """How to draw and edit boxes on the canvas, under it."""
    st.caption(
        "Drag to draw a box with the current label. Toolbar (hover the image): undo, redo, and the pencil toggle to "
        "move, resize, delete (✕) or relabel a box (click a selected box, type a label name or number)."
    )


def keys_and_jump_ui(jump_key: str, pending_key: str) -> None:
    """The keyboard shortcuts, and the field that jumps to an image by name (sets ``pending_key`` when used)."""
    # Keys mean the same on Review: Shift+N is "no garments" (a save) on both pages, and no
    # key that only moves here writes there (issue 13: N was "next new" here, "no garments" there).
    st.caption(
        "Keys: 1–9 label · Ctrl+S save · F next · D previous · Shift+F next new image · Shift+N no garments · "
        "T accept suggested tags. "
        "Moving on saves first."
    )
    st.text_input("Jump to image (name)", key=jump_key, on_change=lambda: st.session_state.update({pending_key: True}))
