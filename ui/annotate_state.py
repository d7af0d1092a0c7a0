"""The Annotate page's per-browser-session state: the image it shows, the copy being edited, the action messages."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import streamlit as st
from sqlalchemy import Engine

from core.annotate.errors import AnnotationError
from core.annotate.queue import QueueEntry, first_to_do
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


def load_current(
    engine: Engine, entries: Sequence[QueueEntry], image_key: str, loaded_key: str
) -> tuple[int, ImageState, Loaded]:
    """The image to show: its position in the queue, its state as saved now and this session's copy of it.

    The image stays the one shown before while it is in the queue, else the first to do;
    one deleted meanwhile is dropped with a message and the page reruns.
    """
    ids = [e.id for e in entries]
    current = st.session_state.get(image_key)
    if current not in ids:
        start = first_to_do(entries) or entries[0]
        current = start.id
        st.session_state[image_key] = current
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
    return ids.index(current), fresh, loaded
