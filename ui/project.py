"""Sidebar widgets: project picker and user name."""

from __future__ import annotations

import streamlit as st
from sqlalchemy import select

from db.engine import session_scope
from db.models import Project
from ui.context import PENDING_PROJECT_KEY, PROJECT_KEY, USER_KEY, current_user, get_context


def project_picker_ui() -> int | None:
    """Draws the project picker in the sidebar and returns the chosen project's id."""
    ctx = get_context()
    with session_scope(ctx.engine) as session:
        projects = {p.id: p.name for p in session.scalars(select(Project).order_by(Project.id))}
    if not projects:
        st.session_state.pop(PROJECT_KEY, None)
        return None
    pending = st.session_state.pop(PENDING_PROJECT_KEY, None)
    if pending in projects:
        st.session_state[PROJECT_KEY] = pending
    if st.session_state.get(PROJECT_KEY) not in projects:
        wanted = st.query_params.get("project")
        st.session_state[PROJECT_KEY] = int(wanted) if wanted and wanted.isdigit() and int(wanted) in projects else next(iter(projects))
    st.sidebar.selectbox(
        "Project", options=list(projects), format_func=projects.__getitem__, key=PROJECT_KEY
    )
    return int(st.session_state[PROJECT_KEY])


def user_ui() -> str:
    """Draws the 'your name' field in the sidebar and returns the name."""
    current_user()  # seeds the session state with a default
    st.sidebar.text_input("Your name", key=USER_KEY, help="Recorded as 'who' on every box and decision you save.")
    return current_user()
