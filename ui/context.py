"""The app-wide context every page shares: settings, database engine, current project."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from dataclasses import dataclass

import streamlit as st
from sqlalchemy import Engine

from core.database import open_database
from core.demo_project import ensure_demo_project
from core.settings import Settings

PROJECT_KEY = "project_id"
USER_KEY = "user_name"


@dataclass(frozen=True)
class AppContext:
    """Process-wide resources, created once per Streamlit server."""

    settings: Settings
    engine: Engine


def _cli_settings() -> Settings:
    # ``streamlit run app.py -- --db URL --data-dir DIR``: Streamlit hands what follows
    # ``--`` to the script in sys.argv.
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--db")
    parser.add_argument("--data-dir")
    args, _ = parser.parse_known_args(sys.argv[1:])
    return Settings.resolve(args.db, args.data_dir)


@st.cache_resource(show_spinner="Preparing the database (the first start also creates the demo project)…")
def get_context() -> AppContext:
    """Opens (and migrates) the database; on the very first start, creates the demo project."""
    settings = _cli_settings()
    engine = open_database(settings)
    ensure_demo_project(engine, settings)
    return AppContext(settings=settings, engine=engine)


def current_user() -> str:
    """The name recorded as 'who' on every change made from this browser session."""
    if USER_KEY not in st.session_state:
        default = os.environ.get("TAGRACK_USER")
        if not default:
            try:
                default = getpass.getuser()
            except (KeyError, OSError):
                default = "annotator"
        st.session_state[USER_KEY] = st.query_params.get("user", default)
    return str(st.session_state[USER_KEY])


def current_project_id() -> int | None:
    """The project picked in the sidebar, or None before any exists."""
    value = st.session_state.get(PROJECT_KEY)
    return int(value) if value is not None else None
