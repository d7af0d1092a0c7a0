"""Widgets beside the annotate canvas: queue filters, label picker, attributes, box list, history."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from core.annotate.attributes import effective_attributes
from core.annotate.queue import UNASSIGNED, AnnotationQueueFilter
from core.annotate.save import box_history
from core.annotate.state import DraftBox, ImageState, LabelInfo, StoredBox, resolve_label
from db.engine import session_scope
from db.models import BoxSource, ImageStatus, Split


def queue_filter_ui(labels: Sequence[LabelInfo], project_id: int) -> AnnotationQueueFilter:
    """Sidebar filters for the annotation queue (status, label, split); returns the filter."""
    names = {lab.id: lab.name for lab in labels}
    with st.sidebar.expander("Queue filters", expanded=False):
        statuses = st.multiselect(
            "Status", [s.value for s in ImageStatus], key=f"ann_f_status_{project_id}", placeholder="any status"
        )
        label_ids = st.multiselect(
            "Has a box labelled", list(names), format_func=names.__getitem__, key=f"ann_f_label_{project_id}",
            placeholder="any label",
        )  # fmt: skip
        splits = st.multiselect(
            "Split", [s.value for s in Split] + [UNASSIGNED], key=f"ann_f_split_{project_id}", placeholder="any split"
        )
    return AnnotationQueueFilter(tuple(ImageStatus(s) for s in statuses), tuple(label_ids), tuple(splits))


def _pick(key: str, name: str) -> None:
    st.session_state[key] = name


def label_picker_ui(labels: Sequence[LabelInfo], project_id: int) -> LabelInfo:
    """Label buttons, keys 1 to 9 for the first nine; returns the label new boxes get."""
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


def attributes_ui(schema: Mapping[str, Sequence[str]], state: ImageState, revision: int) -> dict[str, str]:
    """Image-level attribute pickers from the project's schema; returns the chosen values."""
    if not schema:
        return {}
    st.markdown("**Image attributes**")
    values = effective_attributes(schema, state.attributes)
    out: dict[str, str] = {}
    for name, options in schema.items():
        options = [str(o) for o in options]
        out[name] = st.segmented_control(
            name.replace("_", " ").capitalize(),
            options,
            default=values[name],
            required=True,
            key=f"ann_attr_{state.id}_r{revision}_{name}",
        )
    return out


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


def history_ui(engine: Engine, image_id: int) -> None:
    """The image's newest box changes with who and when."""
    with session_scope(engine) as session:
        changes = [
            (c.created_at, c.who or "", c.action, c.revision, (c.before or {}).get("label", ""),
             (c.after or {}).get("label", ""))
            for c in box_history(session, image_id)
        ]  # fmt: skip
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
