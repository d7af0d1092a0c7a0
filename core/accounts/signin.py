"""Signing in: password checks with a growing delay after repeated failures, and server-side sessions.

The browser session holds a random token; the database holds its SHA-256 and when it was last
used, so a session cannot be forged by naming an account, ends when idle too long, and ends for
every browser when the password changes or the account is disabled.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts import audit
from core.accounts.passwords import hash_password, needs_rehash, verify_password
from core.accounts.users import get_account
from db.models import Account, AuthSession, SignInThrottle, utcnow

FREE_FAILURES = 5  # wrong passwords before the delay starts
FIRST_DELAY_S = 30.0  # after the 5th failure; doubles with each further failure
MAX_DELAY_S = 3600.0
IDLE_LIMIT = timedelta(hours=12)
# last_seen_at is written at most this often, so a page run does not write on every click.
_TOUCH_EVERY = timedelta(minutes=1)
# One message for every refusal, so that the answer does not tell which user names exist.
WRONG = "Wrong user name or password."


@dataclass(frozen=True)
class SignInResult:
    """The outcome of one attempt: a session token, or a message (and the wait, when throttled)."""

    token: str | None
    message: str
    retry_after_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.token is not None


def _delay_s(failures: int) -> float:
    if failures < FREE_FAILURES:
        return 0.0
    return min(FIRST_DELAY_S * 2 ** (failures - FREE_FAILURES), MAX_DELAY_S)


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_in(session: Session, username: str, password: str, now: datetime | None = None) -> SignInResult:
    """Checks a user name and password; on success starts a session and returns its token.

    Unknown names, disabled accounts and wrong passwords get the same message and count the
    same failures, so nothing tells them apart. After :data:`FREE_FAILURES` failures for a name,
    attempts are refused without checking the password until a delay passes (30 s, then doubling).
    """
    now = now or utcnow()
    name = username.strip().lower()[:64]
    throttle = session.get(SignInThrottle, name)
    if throttle is not None and throttle.locked_until is not None and now < throttle.locked_until:
        wait = (throttle.locked_until - now).total_seconds()
        audit.record(session, "sign_in_failed", name, reason="throttled")
        return SignInResult(None, _wait_message(wait), wait)
    account = get_account(session, name)
    good = verify_password(account.password_hash if account else None, password)
    if not good or account is None or account.disabled:
        if throttle is None:
            throttle = SignInThrottle(name=name, failures=0)
            session.add(throttle)
        throttle.failures += 1
        throttle.last_failed_at = now
        delay = _delay_s(throttle.failures)
        throttle.locked_until = now + timedelta(seconds=delay) if delay else None
        audit.record(session, "sign_in_failed", name, failures=throttle.failures)
        return SignInResult(None, _wait_message(delay) if delay else WRONG, delay)
    if throttle is not None:
        session.delete(throttle)
    if account.password_hash and needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)
    return SignInResult(start_session(session, account, now), "Signed in.")


def _wait_message(seconds: float) -> str:
    return f"{WRONG} Too many failed attempts for this name: wait {int(seconds + 0.999)} s before the next try."


def start_session(session: Session, account: Account, now: datetime | None = None, how: str = "password") -> str:
    """Starts a session for ``account`` (after a password or single sign-on) and returns its token."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    session.add(AuthSession(token_hash=_hash_token(token), account_id=account.id, created_at=now, last_seen_at=now))
    account.last_sign_in_at = now
    audit.record(session, "sign_in", account.username, how=how)
    return token


def resolve_session(
    session: Session, token: str | None, now: datetime | None = None, idle: timedelta = IDLE_LIMIT
) -> Account | None:
    """The account a session token belongs to, or None (no such session, ended, idle too long, account disabled)."""
    if not token:
        return None
    now = now or utcnow()
    row = session.scalar(select(AuthSession).where(AuthSession.token_hash == _hash_token(token)))
    if row is None or row.ended_at is not None:
        return None
    if now - row.last_seen_at > idle:
        row.ended_at = now
        return None
    account = session.get(Account, row.account_id)
    if account is None or account.disabled:
        return None
    if now - row.last_seen_at > _TOUCH_EVERY:
        row.last_seen_at = now
    return account


def end_session(session: Session, token: str | None) -> None:
    """Signs a session out (its token stops working at once)."""
    if not token:
        return
    row = session.scalar(select(AuthSession).where(AuthSession.token_hash == _hash_token(token)))
    if row is not None and row.ended_at is None:
        row.ended_at = utcnow()
        account = session.get(Account, row.account_id)
        audit.record(session, "sign_out", account.username if account else None)


def change_own_password(session: Session, account: Account, current: str, new: str) -> str | None:
    """A signed-in person changes their password; returns an error message, or None when done."""
    from core.accounts.users import AccountError, set_password

    if not verify_password(account.password_hash, current):
        return "The current password is wrong."
    try:
        set_password(session, account.username, new, by=account.username)
    except AccountError as exc:
        return str(exc)
    return None
