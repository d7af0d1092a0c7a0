"""The Annotate page's per-browser-session state: the image it shows, the copy being edited, the action messages."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import streamlit as st
from sqlalchemy import Engine

from core.annotate.errors import AnnotationError
from core.annotate.queue import (
    AnnotationQueueFilter,
    QueueEntry,
    next_to_do,
    position,
    queue_count,
    queue_entry,
    queue_page,
)
from core.annotate.state import DraftBox, ImageState, load_image
from db.engine import session_scope

FLASH_KEY = "ann_flash"
FLASH_SECONDS = 60


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


def flash_ui() -> None:
    """Shows the messages of the last action that are younger than FLASH_SECONDS."""
    for kind, message, at in st.session_state.get(FLASH_KEY, []):
        if time.monotonic() - at < FLASH_SECONDS:
            getattr(st, kind)(message)


def clear_flash() -> None:
    """Forgets the last action's messages (a new action replaces them)."""
    st.session_state[FLASH_KEY] = []


@dataclass(frozen=True)
class Place:
    """Where the shown image stands in the filtered queue."""

    entry: QueueEntry
    pos: int  # 0-based
    count: int


def load_current(
    engine: Engine, project_id: int, flt: AnnotationQueueFilter, image_key: str, loaded_key: str
) -> tuple[Place, ImageState, Loaded] | None:
    """The image to show: its place in the queue, its state as saved now and this session's copy of it.

    The image stays the one shown before while it is in the queue, else the first to do (else
    the first); one deleted meanwhile is dropped with a message and the page reruns. None when
    the queue is empty. A few indexed queries (count, the entry, its position), never the whole
    queue: 100,000 images cost what 300 do.
    """
    with session_scope(engine) as session:
        count = queue_count(session, project_id, flt)
        if count == 0:
            return None
        entry = queue_entry(session, project_id, flt, st.session_state.get(image_key))
        if entry is None:
            entry = next_to_do(session, project_id, flt) or queue_page(session, project_id, flt, limit=1)[0]
            st.session_state[image_key] = entry.id
        pos = position(session, project_id, flt, entry)
    current = entry.id
    try:
        with session_scope(engine) as session:
            fresh = load_image(session, current)
    except AnnotationError as exc:  # deleted between the queue query and now
        st.session_state.pop(image_key, None)
        st.session_state.pop(loaded_key, None)
        flash("warning", str(exc))
        st.rerun()
    loaded: Loaded | None = st.session_state.get(loaded_key)
    if loaded is None or loaded.image_id != current:
        # A new mount number per load: "Discard and reload" at the same revision must still
        # remount the canvas, or the component would keep showing the discarded drawing.
        st.session_state["ann_mounts"] = st.session_state.get("ann_mounts", 0) + 1
        loaded = Loaded(image_id=current, revision=fresh.revision, state=fresh, nonce=st.session_state["ann_mounts"])
        st.session_state[loaded_key] = loaded
    return Place(entry, pos, max(count, pos + 1)), fresh, loaded
