"""The sign-in gate: every page run passes here (app.py) before the page's own code.

The browser session keeps only a random token; every run looks it up in the database
(``core.accounts.signin.resolve_session``) and re-reads the account's role, so a session
cannot be forged by setting session state, and a disabled account or a changed role takes
effect on the next click. ``require_role(action)`` is the per-action check pages call right
before they act.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from core.accounts.audit import record
from core.accounts.roles import ADMIN, action_allowed, page_allowed
from core.accounts.signin import change_own_password, end_session, resolve_session, sign_in, start_session
from core.accounts.users import FIRST_ADMIN, get_account, get_by_email, role_in
from db.engine import session_scope
from db.models import Account
from ui.context import ACCOUNT_KEY, current_project_id, get_context

TOKEN_KEY = "_auth_token"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class SignedIn:
    """Who this run acts for, and their role in the current project (recomputed on every run)."""

    username: str
    display_name: str
    role: str
    account_id: int | None  # None in --no-auth mode


def no_auth_requested() -> bool:
    """``streamlit run app.py -- --no-auth`` (or TAGRACK_NO_AUTH=1): one person on this machine, no sign-in."""
    return "--no-auth" in sys.argv[1:] or os.environ.get("TAGRACK_NO_AUTH") == "1"


def nav_position() -> str:
    """The navigation menu shows only to a browser session that holds a token (or in --no-auth mode)."""
    return "sidebar" if no_auth_requested() or st.session_state.get(TOKEN_KEY) else "hidden"


def gate() -> SignedIn:
    """Whom this run acts for; without a valid session, draws only the sign-in form and stops the run."""
    ctx = get_context()
    if no_auth_requested():
        address = st.get_option("server.address") or ""
        if address not in LOOPBACK:
            st.session_state.pop(ACCOUNT_KEY, None)
            st.error(
                "--no-auth is allowed only when the server listens on this machine alone: start it with "
                "`streamlit run app.py --server.address 127.0.0.1 -- --no-auth` "
                f"(it listens on {address or 'every interface'} now). Without --no-auth, people sign in."
            )
            st.stop()
        from ui.context import current_user

        st.session_state.pop(ACCOUNT_KEY, None)
        return SignedIn(current_user(), current_user(), ADMIN, None)
    token = st.session_state.get(TOKEN_KEY)
    with session_scope(ctx.engine) as session:
        account = resolve_session(session, token)
        if account is not None:
            signed = SignedIn(account.username, account.display_name, account.role, account.id)
    if account is None and _sso_configured() and _sso_signed_in():
        _sign_in_from_sso()  # reruns when the e-mail maps to an account
    if account is None:
        st.session_state.pop(ACCOUNT_KEY, None)
        if token is not None:  # expired or ended elsewhere: draw the form with the menu hidden
            st.session_state.pop(TOKEN_KEY, None)
            st.rerun()
        sign_in_form_ui()
        st.stop()
    st.session_state[ACCOUNT_KEY] = signed
    return signed


def _sso_configured() -> bool:
    """Whether .streamlit/secrets.toml has an [auth] section (Streamlit's OIDC sign-in, st.login)."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets.toml at all: Streamlit raises rather than answer False
        return False


def _sso_signed_in() -> bool:
    return bool(getattr(st.user, "is_logged_in", False))


def _sign_in_from_sso() -> None:
    """Maps the identity provider's e-mail to an account and starts a session; refuses unknown e-mails."""
    email = st.user.get("email")
    with session_scope(get_context().engine) as session:
        account = get_by_email(session, str(email) if email else None)
        if account is not None and not account.disabled:
            st.session_state[TOKEN_KEY] = start_session(session, account, how="sso")
        else:
            record(session, "sign_in_failed", str(email or ""), how="sso")
    if st.session_state.get(TOKEN_KEY):
        st.rerun()
    st.error(
        f"{email or 'This single sign-on account'} has no Tagrack account: ask an admin to add one with that "
        "e-mail (Users page, or `python -m core users add NAME --email ADDRESS --sso-only`)."
    )
    st.button("Sign out of single sign-on", on_click=st.logout)


def sign_in_form_ui() -> None:
    """The sign-in form, and where the first start's password was printed."""
    ctx = get_context()
    st.title("Sign in to Tagrack")
    with st.form("sign_in"):
        username = st.text_input("User name")
        password = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        with session_scope(ctx.engine) as session:
            result = sign_in(session, username, password)
        if result.ok:
            st.session_state[TOKEN_KEY] = result.token
            st.rerun()
        st.error(result.message)
    with session_scope(ctx.engine) as session:
        first = get_account(session, FIRST_ADMIN)
        never_used = first is not None and first.last_sign_in_at is None
    if never_used:
        st.info(
            "First start: Tagrack created the account **admin** and printed its password once in the "
            "terminal that runs `streamlit run` (the line starting with `Tagrack first start`). "
            "Lost it? `python -m core users passwd admin` sets a new one."
        )
    if _sso_configured():
        st.button("Sign in with single sign-on", on_click=st.login)
    st.caption("No account yet? Ask an admin to add you (Users page, or `python -m core users add NAME`).")


def project_role() -> SignedIn:
    """The signed-in person with their role in the current project (a project role overrides the global one)."""
    signed: SignedIn | None = st.session_state.get(ACCOUNT_KEY)
    if signed is None or signed.account_id is None:
        return signed or SignedIn("", "", ADMIN, None)
    project_id = current_project_id()
    if project_id is None:
        return signed
    with session_scope(get_context().engine) as session:
        account = session.get(Account, signed.account_id)
        role = role_in(session, account, project_id) if account is not None else signed.role
    signed = SignedIn(signed.username, signed.display_name, role, signed.account_id)
    st.session_state[ACCOUNT_KEY] = signed
    return signed


def menu_role() -> str | None:
    """The role the menu is drawn for: the one the previous run found (None before sign-in)."""
    if no_auth_requested():
        return ADMIN
    signed: SignedIn | None = st.session_state.get(ACCOUNT_KEY)
    return signed.role if signed is not None else None


def menu_pages(pages: list[tuple[str, str, str]], role: str | None) -> list[Any]:
    """``st.Page`` objects for (file, title, icon) rows, the first the default; hidden from the menu where ``role`` may not open them.

    Hidden, not left out: a page left out of st.navigation cannot be reached at all, and an
    address someone bookmarked should still say why it is refused (require_page). Before sign-in
    (``role`` None) the menu itself is hidden.
    """
    out = []
    for n, (path, title, icon) in enumerate(pages):
        url_path = "" if n == 0 else Path(path).stem
        visible = role is None or page_allowed(role, url_path)
        out.append(st.Page(path, title=title, icon=icon, default=n == 0, visibility="visible" if visible else "hidden"))
    return out


def require_page(page: object, signed: SignedIn | None = None) -> None:
    """Stops the run with a message when the signed-in role may not open ``page`` (an st.Page)."""
    signed = signed or project_role()
    url_path = getattr(page, "url_path", "")
    if not page_allowed(signed.role, url_path):
        st.warning(
            f"Your role ({signed.role}) cannot open {getattr(page, 'title', url_path)}. Ask an admin if you need it."
        )
        st.stop()


def require_role(action: str) -> None:
    """Call right before an action: refuses it (a message, and the run stops) outside the signed-in role."""
    signed: SignedIn | None = st.session_state.get(ACCOUNT_KEY)
    role = ADMIN if signed is None and no_auth_requested() else (signed.role if signed else None)
    if not action_allowed(role, action):
        st.error(f"Your role ({role or 'signed out'}) cannot do this ({action}); nothing was changed.")
        st.stop()


def account_ui(signed: SignedIn) -> None:
    """The sidebar's account box: who is signed in, sign out, change password."""
    if signed.account_id is None:
        from ui.project import user_ui

        user_ui()
        st.sidebar.caption("No sign-in (--no-auth, this machine only).")
        return
    ctx = get_context()
    st.sidebar.markdown(f"Signed in as **{signed.display_name}** (`{signed.username}`, {signed.role})")
    if st.sidebar.button("Sign out", key="_sign_out"):
        with session_scope(ctx.engine) as session:
            end_session(session, st.session_state.pop(TOKEN_KEY, None))
        st.session_state.pop(ACCOUNT_KEY, None)
        if _sso_configured() and _sso_signed_in():
            st.logout()  # else the identity provider's cookie would sign the browser straight back in
        st.rerun()
    with st.sidebar.popover("Change password"), st.form("change_password", clear_on_submit=True):
        current = st.text_input("Current password", type="password")
        new = st.text_input("New password", type="password")
        again = st.text_input("New password again", type="password")
        if st.form_submit_button("Change password"):
            if new != again:
                st.error("The two new passwords differ.")
            else:
                with session_scope(ctx.engine) as session:
                    account = session.get(Account, signed.account_id)
                    error = change_own_password(session, account, current, new) if account else "Signed out."
                if error:
                    st.error(error)
                else:
                    st.session_state.pop(TOKEN_KEY, None)
                    st.session_state.pop(ACCOUNT_KEY, None)
                    st.rerun()
