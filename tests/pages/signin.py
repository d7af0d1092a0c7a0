"""Signing in through the app's own form in AppTest (tests/pages/conftest.py's ``auth_app`` has the accounts)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def sign_in(at: AppTest, username: str, password: str) -> AppTest:
    """Fills the sign-in form and submits it; returns the app after the rerun."""
    next(t for t in at.text_input if t.label == "User name").input(username)
    next(t for t in at.text_input if t.label == "Password").input(password)
    next(b for b in at.button if b.label == "Sign in").click().run()
    assert not at.exception, at.exception
    return at
