"""The sign-in gate on the real app script (AppTest): no page without a session, roles refused server-side."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from db.engine import make_engine, session_scope
from db.models import Account, AuditEvent, Label
from tests.pages.signin import sign_in
from ui.auth import SignedIn

ROOT = Path(__file__).resolve().parents[2]
PAGE_FILES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "pages").glob("*.py"))
ADMIN_ONLY = ["pages/upload.py", "pages/import_annotations.py", "pages/export.py", "pages/train.py", "pages/users.py"]


def _shows_only_sign_in(at: AppTest) -> None:
    assert [t.value for t in at.title] == ["Sign in to Tagrack"]
    assert not at.sidebar.selectbox, "the project picker (project names) must not be drawn"
    assert not at.metric and not at.dataframe


@pytest.mark.parametrize("page", PAGE_FILES)
def test_every_page_without_a_session_shows_only_the_sign_in_form(auth_app: Callable[[], AppTest], page: str) -> None:
    at = auth_app().run()
    _shows_only_sign_in(at)
    at.switch_page(page).run()
    assert not at.exception, at.exception
    _shows_only_sign_in(at)


def test_wrong_password_and_unknown_name_get_the_same_message(auth_app: Callable[[], AppTest]) -> None:
    at = sign_in(auth_app().run(), "ann", "not-her-password")
    wrong_password = [e.value for e in at.error]
    at = sign_in(auth_app().run(), "nobody", "not-her-password")
    assert wrong_password == [e.value for e in at.error] == ["Wrong user name or password."]
    _shows_only_sign_in(at)


def test_sign_in_shows_home_and_sign_out_ends_the_session(auth_app: Callable[[], AppTest], app_env: Path) -> None:
    at = sign_in(auth_app().run(), "boss", "boss-password")
    assert {m.label: m.value for m in at.metric}["Images"] == "300"
    assert any("Signed in as" in m.value for m in at.sidebar.markdown)
    token = at.session_state["_auth_token"]
    next(b for b in at.sidebar.button if b.label == "Sign out").click().run()
    _shows_only_sign_in(at)
    # The old token no longer opens anything, even if a browser kept it.
    at.session_state["_auth_token"] = token
    at.run()
    _shows_only_sign_in(at)


@pytest.mark.parametrize("page", ADMIN_ONLY)
def test_annotator_cannot_open_admin_pages(auth_app: Callable[[], AppTest], page: str) -> None:
    at = sign_in(auth_app().run(), "ann", "ann-password")
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert any("Your role (annotator) cannot open" in w.value for w in at.warning)
    assert not at.dataframe and not any(b.label in ("Export", "Train", "Import", "Add") for b in at.button)


def test_forged_session_state_is_refused(auth_app: Callable[[], AppTest]) -> None:
    at = sign_in(auth_app().run(), "ann", "ann-password")
    # Forge the account the page acts for: the gate rereads it from the session token on every run.
    at.session_state["_auth_account"] = SignedIn("boss", "boss", "admin", 1)
    at.switch_page("pages/export.py").run()
    assert any("Your role (annotator) cannot open" in w.value for w in at.warning)
    # Forge a token: no session matches it, so only the sign-in form is drawn.
    at.session_state["_auth_token"] = "forged-token"
    at.run()
    _shows_only_sign_in(at)


def test_annotator_clicking_an_admin_action_changes_nothing(auth_app: Callable[[], AppTest], app_env: Path) -> None:
    at = sign_in(auth_app().run(), "ann", "ann-password")
    next(b for b in at.button if b.label == "Save labels and attributes").click().run()
    assert any("cannot do this (project.edit)" in e.value for e in at.error)
    next(t for t in at.text_input if t.label == "Project name").input("Annotator's project")
    next(b for b in at.button if b.label == "Create project").click().run()
    assert any("cannot do this (project.create)" in e.value for e in at.error)
    engine = make_engine(f"sqlite:///{app_env / 'tagrack.db'}")
    with session_scope(engine) as session:
        assert not session.scalars(select(AuditEvent).where(AuditEvent.action == "labels_deleted")).all()
        assert session.scalar(select(Label.id).limit(1)) is not None
    engine.dispose()


def test_first_start_creates_admin_and_prints_its_password(
    make_app: Callable[[], AppTest], app_env: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TAGRACK_NO_AUTH")
    at = make_app().run()
    _shows_only_sign_in(at)
    assert any("printed its password once in the terminal" in i.value for i in at.info)
    line = next(x for x in capfd.readouterr().err.splitlines() if x.startswith("Tagrack first start"))
    password = line.split()[-1]
    at = sign_in(at, "admin", password)
    assert {m.label: m.value for m in at.metric}["Images"] == "300"
    engine = make_engine(f"sqlite:///{app_env / 'tagrack.db'}")
    with session_scope(engine) as session:
        assert session.scalar(select(Account.last_sign_in_at).where(Account.username == "admin")) is not None
    engine.dispose()


def test_no_auth_is_refused_off_loopback(make_app: Callable[[], AppTest], monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit import config

    config.set_option("server.address", "0.0.0.0")  # app_env puts the loopback address back afterwards
    at = make_app().run()
    assert any("--no-auth is allowed only when the server listens on this machine alone" in e.value for e in at.error)
    assert not at.metric and not at.sidebar.selectbox


SSO_SECRETS = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "a-test-cookie-secret",
    "client_id": "tagrack",
    "client_secret": "test",
    "server_metadata_url": "https://idp.invalid/.well-known/openid-configuration",
}


def test_single_sign_on_maps_the_email_to_an_account(auth_app: Callable[[], AppTest], app_env: Path) -> None:
    from core.accounts.users import add_account

    engine = make_engine(f"sqlite:///{app_env / 'tagrack.db'}")
    with session_scope(engine) as session:
        add_account(session, "sso-rev", None, "reviewer", email="Rev@Example.com")
    engine.dispose()
    at = auth_app()
    at.secrets["auth"] = SSO_SECRETS
    at.run()
    assert any(b.label == "Sign in with single sign-on" for b in at.button)
    at.user = {"is_logged_in": True, "email": "rev@example.com", "name": "Rev"}
    at.run()
    assert not at.exception, at.exception
    assert any(
        "Signed in as" in m.value and "sso-rev" in m.value and "reviewer" in m.value for m in at.sidebar.markdown
    )

    stranger = auth_app()
    stranger.secrets["auth"] = SSO_SECRETS
    stranger.user = {"is_logged_in": True, "email": "stranger@example.com"}
    stranger.run()
    assert any("stranger@example.com has no Tagrack account" in e.value for e in stranger.error)
    _shows_only_sign_in(stranger)
    engine = make_engine(f"sqlite:///{app_env / 'tagrack.db'}")
    with session_scope(engine) as session:
        hows = [
            (e.who, e.detail.get("how")) for e in session.scalars(select(AuditEvent)) if e.action.startswith("sign_in")
        ]
    engine.dispose()
    assert ("sso-rev", "sso") in hows and ("stranger@example.com", "sso") in hows
