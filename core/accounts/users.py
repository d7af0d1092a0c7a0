"""Accounts: adding people, passwords, roles, disabling, the first start's admin."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.accounts import audit
from core.accounts.passwords import PasswordError, check_strength, hash_password, random_password
from core.accounts.roles import ADMIN, ROLES
from db.models import Account, AuthSession, ProjectRole, utcnow

FIRST_ADMIN = "admin"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class AccountError(ValueError):
    """A refused account change (bad name, unknown account, weak password, last admin)."""


def get_account(session: Session, username: str) -> Account | None:
    """The account called ``username`` (case-insensitive), or None."""
    return session.scalar(select(Account).where(func.lower(Account.username) == username.strip().lower()))


def get_by_email(session: Session, email: str | None) -> Account | None:
    """The account single sign-on maps ``email`` to (case-insensitive), or None."""
    if not email:
        return None
    return session.scalar(select(Account).where(func.lower(Account.email) == email.strip().lower()))


def _require(session: Session, username: str) -> Account:
    account = get_account(session, username)
    if account is None:
        raise AccountError(f"No account is called {username!r}.")
    return account


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"Unknown role {role!r}; choose one of {', '.join(ROLES)}.")
    return role


def add_account(
    session: Session,
    username: str,
    password: str | None,
    role: str,
    display_name: str = "",
    email: str | None = None,
    by: str | None = None,
) -> Account:
    """Creates an account (``password`` None: single sign-on only, matched by ``email``)."""
    username = username.strip()
    if not _NAME.match(username):
        raise AccountError(
            f"A user name is 1-64 letters, digits or . _ @ - and starts with a letter or digit; {username!r} is not."
        )
    if get_account(session, username) is not None:
        raise AccountError(f"An account called {username!r} already exists.")
    if email and session.scalar(select(Account).where(func.lower(Account.email) == email.strip().lower())):
        raise AccountError(f"Another account already has the e-mail {email!r}.")
    if password is None and not email:
        raise AccountError("An account needs a password or an e-mail for single sign-on.")
    try:
        if password is not None:
            check_strength(password)
    except PasswordError as exc:
        raise AccountError(str(exc)) from exc
    account = Account(
        username=username,
        display_name=display_name.strip() or username,
        email=email.strip().lower() if email else None,
        password_hash=hash_password(password) if password is not None else None,
        role=_check_role(role),
    )
    session.add(account)
    session.flush()
    audit.record(session, "account_added", by, username=username, role=role)
    return account


def set_password(session: Session, username: str, password: str, by: str | None = None) -> Account:
    """Replaces an account's password and ends its open sessions (they were signed in with the old one)."""
    account = _require(session, username)
    try:
        check_strength(password)
    except PasswordError as exc:
        raise AccountError(str(exc)) from exc
    account.password_hash = hash_password(password)
    _end_sessions(session, account.id)
    audit.record(session, "password_changed", by, username=account.username)
    return account


def _active_admins(session: Session) -> int:
    return session.scalar(select(func.count()).where(Account.role == ADMIN, Account.disabled.is_(False))) or 0


def set_role(
    session: Session, username: str, role: str, by: str | None = None, project_id: int | None = None
) -> Account:
    """Changes the global role, or with ``project_id`` the role in that project only."""
    account = _require(session, username)
    _check_role(role)
    if project_id is None:
        if account.role == ADMIN and role != ADMIN and not account.disabled and _active_admins(session) <= 1:
            raise AccountError(f"{account.username!r} is the last admin; make someone else admin first.")
        before = account.role
        account.role = role
    else:
        row = session.get(ProjectRole, (account.id, project_id))
        before = row.role if row else account.role
        if row is None:
            session.add(ProjectRole(account_id=account.id, project_id=project_id, role=role))
        else:
            row.role = role
    audit.record(session, "role_changed", by, project_id, username=account.username, before=before, after=role)
    return account


def set_disabled(session: Session, username: str, disabled: bool, by: str | None = None) -> Account:
    """Disables (or enables again) an account; a disabled account keeps its history but cannot sign in."""
    account = _require(session, username)
    if disabled and account.role == ADMIN and not account.disabled and _active_admins(session) <= 1:
        raise AccountError(f"{account.username!r} is the last admin; make someone else admin first.")
    account.disabled = disabled
    if disabled:
        _end_sessions(session, account.id)
    audit.record(session, "account_disabled" if disabled else "account_enabled", by, username=account.username)
    return account


def list_accounts(session: Session) -> list[Account]:
    """Every account, by user name."""
    return list(session.scalars(select(Account).order_by(Account.username)))


def role_in(session: Session, account: Account, project_id: int | None) -> str:
    """The account's role in ``project_id`` (its project role there, else its global role)."""
    if project_id is not None:
        row = session.get(ProjectRole, (account.id, project_id))
        if row is not None:
            return row.role
    return account.role


def ensure_first_admin(session: Session) -> str | None:
    """On a database without accounts, creates ``admin`` with a random password and returns that password.

    Returns None when any account exists (the password is shown once: nothing stores it in clear).
    """
    if session.scalar(select(func.count()).select_from(Account)):
        return None
    password = random_password()
    add_account(session, FIRST_ADMIN, password, ADMIN, display_name="Administrator", by="first start")
    return password


def _end_sessions(session: Session, account_id: int) -> None:
    now = utcnow()
    for row in session.scalars(
        select(AuthSession).where(AuthSession.account_id == account_id, AuthSession.ended_at.is_(None))
    ):
        row.ended_at = now
