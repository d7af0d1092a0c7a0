"""Accounts on a real database: hashes only, roles, lockout with a growing delay, sessions, the audit trail, the CLI."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, MetaData, select

from core.accounts.passwords import verify_password
from core.accounts.roles import action_allowed, page_allowed
from core.accounts.signin import FREE_FAILURES, WRONG, end_session, resolve_session, sign_in
from core.accounts.users import (
    AccountError,
    add_account,
    ensure_first_admin,
    get_account,
    role_in,
    set_disabled,
    set_password,
    set_role,
)
from core.cli import main
from core.jobs import create_job
from core.project.projects import get_project, set_labels
from core.settings import Settings
from db.engine import session_scope
from db.models import Account, AuditEvent

pytestmark = pytest.mark.both_databases

PLAIN = "correct-horse-battery"
T0 = datetime(2026, 12, 1, 9, 0, 0)


def _everything_stored(engine: Engine, settings: Settings) -> bytes:
    """Every row of every table as text, plus (SQLite) the raw database and WAL files."""
    meta = MetaData()
    meta.reflect(engine)
    out = []
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            out.extend(repr(tuple(row)) for row in conn.execute(table.select()))
    blob = "\n".join(out).encode()
    if settings.db_url.startswith("sqlite"):
        db = Path(settings.db_url.removeprefix("sqlite:///"))
        blob += b"".join(p.read_bytes() for p in (db, db.with_name(db.name + "-wal")) if p.exists())
    return blob


def test_only_the_argon2id_hash_is_stored(engine: Engine, settings: Settings) -> None:
    with session_scope(engine) as session:
        add_account(session, "ann", PLAIN, "annotator")
    with session_scope(engine) as session:
        stored = get_account(session, "ANN").password_hash
    assert stored.startswith("$argon2id$") and verify_password(stored, PLAIN)
    assert PLAIN.encode() not in _everything_stored(engine, settings)


def test_bad_accounts_are_refused_with_a_reason(engine: Engine) -> None:
    with session_scope(engine) as session:
        add_account(session, "ann", PLAIN, "annotator")
    for args, message in (
        (("ann", PLAIN, "annotator"), "already exists"),
        (("bob", "short", "annotator"), "at least 8"),
        (("bob", PLAIN, "boss"), "Unknown role"),
        (("-bob", PLAIN, "annotator"), "user name is"),
    ):
        with pytest.raises(AccountError, match=message), session_scope(engine) as session:
            add_account(session, *args)


def test_roles_per_page_and_action_and_per_project(engine: Engine, project_id: int) -> None:
    assert page_allowed("annotator", "annotate") and not page_allowed("annotator", "export")
    assert not page_allowed("reviewer", "train") and page_allowed("reviewer", "review")
    assert page_allowed("annotator", "") and not page_allowed(None, "home")
    assert not page_allowed("reviewer", "some_new_page") and page_allowed("admin", "some_new_page")
    assert action_allowed("reviewer", "work.review") and not action_allowed("annotator", "export.run")
    with session_scope(engine) as session:
        add_account(session, "ann", PLAIN, "annotator")
        add_account(session, "boss", PLAIN, "admin")
        set_role(session, "ann", "reviewer", by="boss", project_id=project_id)
    with session_scope(engine) as session:
        ann = get_account(session, "ann")
        assert role_in(session, ann, project_id) == "reviewer" and role_in(session, ann, None) == "annotator"
        with pytest.raises(AccountError, match="last admin"):
            set_role(session, "boss", "annotator")
        with pytest.raises(AccountError, match="last admin"):
            set_disabled(session, "boss", True)


def test_five_wrong_passwords_slow_the_sixth_with_a_growing_delay(engine: Engine) -> None:
    with session_scope(engine) as session:
        add_account(session, "ann", PLAIN, "annotator")
    messages = []
    for i in range(FREE_FAILURES):
        with session_scope(engine) as session:
            messages.append(sign_in(session, "ann", "wrong", now=T0 + timedelta(seconds=i)))
    assert all(r.message == WRONG and r.retry_after_s == 0 for r in messages[:-1])
    assert messages[-1].retry_after_s == 30 and "wait 30 s" in messages[-1].message
    # The sixth attempt, even with the right password, is refused while the delay runs.
    with session_scope(engine) as session:
        sixth = sign_in(session, "ann", PLAIN, now=T0 + timedelta(seconds=10))
    assert not sixth.ok and sixth.retry_after_s > 0
    # After the delay a wrong password doubles it; the right one then still waits, and later works.
    with session_scope(engine) as session:
        assert sign_in(session, "ann", "wrong", now=T0 + timedelta(seconds=40)).retry_after_s == 60
    with session_scope(engine) as session:
        assert sign_in(session, "ann", PLAIN, now=T0 + timedelta(seconds=120)).ok
    # A success resets the count.
    with session_scope(engine) as session:
        assert sign_in(session, "ann", "wrong", now=T0 + timedelta(seconds=121)).retry_after_s == 0


def test_unknown_names_and_disabled_accounts_answer_like_wrong_passwords(engine: Engine) -> None:
    with session_scope(engine) as session:
        add_account(session, "ann", PLAIN, "annotator")
        add_account(session, "boss", PLAIN, "admin")
        set_disabled(session, "ann", True)
    answers = []
    for name, password in (("nobody", PLAIN), ("ann", PLAIN), ("boss", "wrong")):
        with session_scope(engine) as session:
            r = sign_in(session, name, password, now=T0)
            answers.append((r.ok, r.message, r.retry_after_s))
    assert answers == [(False, WRONG, 0.0)] * 3
    unknown = []
    for i in range(FREE_FAILURES - 1):
        with session_scope(engine) as session:
            unknown.append(sign_in(session, "nobody", "x", now=T0 + timedelta(seconds=i)).retry_after_s)
    assert unknown == [0, 0, 0, 30]  # counted like a real account: its 5th failure starts the delay


def test_sessions_expire_when_idle_and_end_on_sign_out_password_change_or_disable(engine: Engine) -> None:
    with session_scope(engine) as session:
        add_account(session, "ann", PLAIN, "annotator")
        add_account(session, "boss", PLAIN, "admin")
    tokens = []
    for _ in range(4):
        with session_scope(engine) as session:
            tokens.append(sign_in(session, "ann", PLAIN, now=T0).token)
    with session_scope(engine) as session:
        assert resolve_session(session, tokens[0], now=T0 + timedelta(hours=11)).username == "ann"
        assert resolve_session(session, "made-up", now=T0) is None
        assert resolve_session(session, tokens[1], now=T0 + timedelta(hours=12, seconds=1)) is None
        end_session(session, tokens[2])
    with session_scope(engine) as session:
        assert resolve_session(session, tokens[2], now=T0) is None
        set_password(session, "ann", "another-password", by="boss")
    with session_scope(engine) as session:
        assert resolve_session(session, tokens[0], now=T0 + timedelta(hours=11)) is None
        token = sign_in(session, "ann", "another-password", now=T0).token
    with session_scope(engine) as session:
        set_disabled(session, "ann", True, by="boss")
    with session_scope(engine) as session:
        assert resolve_session(session, token, now=T0) is None


def test_first_start_creates_admin_once(engine: Engine) -> None:
    with session_scope(engine) as session:
        password = ensure_first_admin(session)
    with session_scope(engine) as session:
        assert ensure_first_admin(session) is None
        assert sign_in(session, "admin", password).ok
        assert get_account(session, "admin").role == "admin"


def _audit(engine: Engine) -> list[tuple[str, str | None, dict]]:
    with session_scope(engine) as session:
        return [(e.action, e.who, e.detail) for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def test_every_audited_action_writes_a_row(engine: Engine, project_id: int) -> None:
    with session_scope(engine) as session:
        add_account(session, "boss", PLAIN, "admin", by="first start")
        add_account(session, "ann", PLAIN, "annotator", by="boss")
    with session_scope(engine) as session:
        sign_in(session, "ann", "wrong", now=T0)
    with session_scope(engine) as session:
        token = sign_in(session, "ann", PLAIN, now=T0).token
        end_session(session, token)
        set_role(session, "ann", "reviewer", by="boss")
        set_password(session, "ann", "another-password", by="boss")
        set_disabled(session, "ann", True, by="boss")
        set_disabled(session, "ann", False, by="boss")
        for kind in ("import-images", "import-annotations", "export", "train"):
            create_job(session, kind, {"project_id": project_id, "who": "boss", "format": "voc"}, project_id)
        set_labels(session, get_project(session, project_id), ["Jeans", "Shirts"], who="boss")
    rows = _audit(engine)
    assert [(a, w) for a, w, _ in rows] == [
        ("account_added", "first start"),
        ("account_added", "boss"),
        ("sign_in_failed", "ann"),
        ("sign_in", "ann"),
        ("sign_out", "ann"),
        ("role_changed", "boss"),
        ("password_changed", "boss"),
        ("account_disabled", "boss"),
        ("account_enabled", "boss"),
        ("import-images", "boss"),
        ("import-annotations", "boss"),
        ("export", "boss"),
        ("train", "boss"),
        ("labels_deleted", "boss"),
    ]
    assert rows[5][2] == {"username": "ann", "before": "annotator", "after": "reviewer"}
    assert rows[11][2]["format"] == "voc" and "job_id" in rows[11][2]
    assert "Jackets" in rows[-1][2]["labels"]


def test_cli_manages_accounts(
    settings: Settings, engine: Engine, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    base = ["--db", settings.db_url, "--data-dir", str(settings.data_dir)]
    assert main(["users", "add", "ann", "--role", "reviewer", *base]) == 0
    password = json.loads(capsys.readouterr().out)["password"]
    with session_scope(engine) as session:
        assert sign_in(session, "ann", password).ok
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("typed-password-1\n"))
    assert main(["users", "passwd", "ann", "--password-stdin", *base]) == 0
    assert "password" not in json.loads(capsys.readouterr().out)
    assert main(["users", "disable", "ann", *base]) == 0
    assert main(["users", "add", "ann", *base]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["users", "list", *base]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(a["username"], a["role"], a["disabled"]) for a in listed] == [("ann", "reviewer", True)]
    with session_scope(engine) as session:
        account = session.scalar(select(Account))
        assert verify_password(account.password_hash, "typed-password-1")


def test_cli_imports_and_exports_enter_the_audit_trail(
    settings: Settings, engine: Engine, project_id: int, tmp_path: Path
) -> None:
    from tests.core.dataset_factory import jpeg_bytes, make_dataset

    make_dataset(engine, settings, project_id, n=4)
    base = ["--db", settings.db_url, "--data-dir", str(settings.data_dir), "--project", str(project_id)]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "new.jpg").write_bytes(jpeg_bytes(40, 30, 99))
    assert main(["import-images", str(tmp_path / "in"), *base]) == 0
    assert main(["export", "voc", str(tmp_path / "out"), *base]) == 0
    rows = [(a, w, d) for a, w, d in _audit(engine) if a in ("import-images", "export")]
    assert [a for a, _, _ in rows] == ["import-images", "export"]
    assert all(w.startswith("shell") and d["via"] == "cli" for _, w, d in rows)
    assert rows[1][2]["format"] == "voc" and rows[1][2]["images"] >= 1
