"""Project widgets: the sidebar's project picker and user name, the Home page's label set and attribute editors."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from db.engine import session_scope
from db.queries import project_names
from ui.context import PENDING_PROJECT_KEY, PROJECT_KEY, USER_KEY, current_user, get_context


def project_picker_ui() -> int | None:
    """Draws the project picker in the sidebar and returns the chosen project's id."""
    ctx = get_context()
    with session_scope(ctx.engine) as session:
        projects = project_names(session)
    if not projects:
        st.session_state.pop(PROJECT_KEY, None)
        return None
    pending = st.session_state.pop(PENDING_PROJECT_KEY, None)
    if pending in projects:
        st.session_state[PROJECT_KEY] = pending
    if st.session_state.get(PROJECT_KEY) not in projects:
        wanted = st.query_params.get("project")
        st.session_state[PROJECT_KEY] = (
            int(wanted) if wanted and wanted.isdigit() and int(wanted) in projects else next(iter(projects))
        )
    st.sidebar.selectbox("Project", options=list(projects), format_func=projects.__getitem__, key=PROJECT_KEY)
    return int(st.session_state[PROJECT_KEY])


def user_ui() -> str:
    """Draws the 'your name' field in the sidebar and returns the name."""
    current_user()  # seeds the session state with a default
    st.sidebar.text_input("Your name", key=USER_KEY, help="Recorded as 'who' on every box and decision you save.")
    return current_user()


def _table_editor_ui(frame: pd.DataFrame, key: str, columns: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """An editable table with rows to add and delete; ``columns``: name -> its text column's settings."""
    return st.data_editor(
        frame,
        num_rows="dynamic",
        hide_index=True,
        key=key,
        column_config={name: st.column_config.TextColumn(**settings) for name, settings in columns.items()},
    )


def label_set_ui(labels: list[tuple[str, str]], project_id: int) -> pd.DataFrame:
    """The project's labels (name, colour) as an editable table; returns the edited table."""
    return _table_editor_ui(
        pd.DataFrame(labels, columns=["name", "colour"]),
        f"labels_{project_id}",
        {
            "name": {"label": "Label", "required": True},
            "colour": {"label": "Colour (#rrggbb)", "validate": r"^#[0-9a-fA-F]{6}$"},
        },
    )


def attribute_schema_ui(schema: dict[str, list[str]], project_id: int) -> pd.DataFrame:
    """The project's image attributes (name, comma-separated values) as an editable table; returns the edited table."""
    return _table_editor_ui(
        pd.DataFrame([(name, ", ".join(values)) for name, values in schema.items()], columns=["attribute", "values"]),
        f"schema_{project_id}",
        {
            "attribute": {"label": "Attribute", "required": True},
            "values": {"label": "Values, comma-separated (first is the default)", "required": True},
        },
    )
