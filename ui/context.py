"""The app-wide context every page shares: settings, database engine, current project."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from dataclasses import dataclass

import streamlit as st
from sqlalchemy import Engine

from core.accounts.users import ensure_first_admin
from core.database import open_database
from core.demo.project import ensure_demo_project
from core.settings import Settings
from db.engine import session_scope

PROJECT_KEY = "project_id"
PENDING_PROJECT_KEY = "_pending_project_id"
USER_KEY = "user_name"
# The signed-in account for this run (ui/auth.py writes it at the start of every run).
ACCOUNT_KEY = "_auth_account"


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
def _open_context() -> AppContext:
    """Opens (and migrates) the database; on the very first start, creates the demo project."""
    settings = _cli_settings()
    engine = open_database(settings)
    ensure_demo_project(engine, settings)
    _first_admin(engine)
    return AppContext(settings=settings, engine=engine)


def _first_admin(engine: Engine) -> None:
    """On a database without accounts, creates ``admin`` and prints its password once, as Jupyter prints its token."""
    with session_scope(engine) as session:
        password = ensure_first_admin(session)
    if password is not None:
        banner = (
            "\n" + "=" * 72 + "\n"
            f"Tagrack first start: created the account 'admin' with the password  {password}\n"
            "Sign in with it, then add people on the Users page (or: python -m core users add NAME).\n"
            "This password is shown only now; `python -m core users passwd admin` sets a new one.\n" + "=" * 72
        )
        print(banner, file=sys.stderr, flush=True)


def reset_context() -> None:
    """Forgets the cached context (tests point the app at a new database)."""
    _open_context.clear()


def _route_through_app() -> None:
    # A fresh server whose first request is a page URL (/annotate) starts in Streamlit's
    # legacy mode for a pages/ folder and runs that page file alone, without app.py's
    # navigation and sidebar. app.py's st.navigation turns legacy mode off for the whole
    # server on its first run; we do the same here and rerun, so the request goes
    # through app.py like every later one.
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def get_context() -> AppContext:
    """The shared context; every page calls this first."""
    _route_through_app()
    return _open_context()


def current_user() -> str:
    """The name recorded as 'who' on every change made from this browser session: the signed-in account.

    In --no-auth mode (one person on 127.0.0.1) it is the sidebar's 'Your name' field.
    """
    signed = st.session_state.get(ACCOUNT_KEY)
    if signed is not None:
        return str(signed.username)
    if USER_KEY not in st.session_state:
        default = os.environ.get("TAGRACK_USER")
        if not default:
            try:
                default = getpass.getuser()
            except (KeyError, OSError):
                default = "annotator"
        st.session_state[USER_KEY] = st.query_params.get("user", default)
    return str(st.session_state[USER_KEY])


def select_project(project_id: int) -> None:
    """Makes ``project_id`` the current project from the next run on.

    The sidebar picker owns PROJECT_KEY and Streamlit forbids changing a widget's value
    after it is drawn, so the choice waits under another key until the picker applies it.
    """
    st.session_state[PENDING_PROJECT_KEY] = project_id


def current_project_id() -> int | None:
    """The project picked in the sidebar, or None before any exists."""
    value = st.session_state.get(PROJECT_KEY)
    return int(value) if value is not None else None


def require_project() -> int:
    """The current project's id; without one, says to create it on Home and stops the page there."""
    project_id = current_project_id()
    if project_id is None:
        st.info("Create a project on the Home page first.")
        st.stop()
    return project_id
