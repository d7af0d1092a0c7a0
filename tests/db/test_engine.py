"""The three session scopes: what each promises about locks, snapshots and writes."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError

from core.project.projects import create_project
from db.engine import is_lock_error, read_scope, session_scope, write_scope
from db.models import Project

pytestmark = pytest.mark.both_databases


def _projects(engine: Engine) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(Project))


def test_a_read_scope_refuses_writes(engine: Engine) -> None:
    with pytest.raises(DBAPIError, match="(?i)read-?only"), read_scope(engine) as session:
        create_project(session, "Not here")
    assert _projects(engine) == 0
    # The pooled connection it used is an ordinary one again.
    with session_scope(engine) as session:
        create_project(session, "Here")
    assert _projects(engine) == 1


def test_a_read_scope_does_not_wait_for_a_writer(engine: Engine) -> None:
    with session_scope(engine) as session:
        create_project(session, "Before")
    with write_scope(engine) as writer:
        create_project(writer, "Not committed yet")
        writer.flush()  # holds the write lock (SQLite) and row locks (PostgreSQL) from here on
        with read_scope(engine) as reader:  # would wait for the writer, here in its own thread, if it queued
            names = list(reader.scalars(select(Project.name)))
    assert names == ["Before"]
    assert _projects(engine) == 2


def test_read_then_write_units_of_work_both_land(engine: Engine, database: str) -> None:
    """A write scope that has read is not failed by a writer that came later; the later one waits its turn."""
    later: list[BaseException | None] = []

    def other_writer() -> None:
        try:
            with session_scope(engine) as session:
                create_project(session, "Later")
            later.append(None)
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            later.append(exc)

    with write_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Project)) == 0  # it has read
        thread = threading.Thread(target=other_writer)
        thread.start()
        if database == "sqlite":
            thread.join(0.2)  # give it the chance to commit in between; the write lock keeps it out
            assert later == []
        create_project(session, "First")
    thread.join(60)
    assert later == [None]
    assert _projects(engine) == 2


def test_why_write_scope_exists_a_stale_snapshot_cannot_write(engine: Engine, database: str) -> None:
    """What failed an import on SQLite: a transaction that has read cannot write after another writer committed."""
    if database != "sqlite":
        pytest.skip("PostgreSQL's read committed transactions take the newer rows")
    with pytest.raises(DBAPIError) as caught, session_scope(engine) as session, session.begin_nested():
        session.scalar(select(func.count()).select_from(Project))  # the savepoint began a transaction: a snapshot
        with session_scope(engine) as other:
            create_project(other, "Committed meanwhile")
        create_project(session, "Stale")
    assert is_lock_error(caught.value)
    assert _projects(engine) == 1
