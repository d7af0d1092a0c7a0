"""Engine and session scopes.

SQLite is the embedded default. Every SQLite connection gets WAL journaling (readers never
block the writer), a busy timeout (a second writer waits instead of failing at once) and
foreign keys on; nothing outside ``db/`` knows which database is in use.

Three kinds of transaction, because on SQLite a transaction that reads and then writes
cannot always wait for the write lock: when another writer committed after its first read,
its snapshot is stale and SQLite answers "database is locked" at once, whatever the busy
timeout. That failed nearly every file of an image import while others saved boxes.

- :func:`write_scope`: a unit of work that reads, then writes, beside other writers (an
  import batch). On SQLite it begins ``BEGIN IMMEDIATE``: it waits its turn for the write
  lock (the busy timeout) before it reads anything, so nothing can come between its reads
  and its writes. Keep slow work (decoding images) outside it: it holds up every writer.
- :func:`read_scope`: work that only reads, possibly for long (an export). One consistent
  snapshot that in WAL mode never waits for a writer and holds up no one; read-only, so a
  write in it is refused rather than becoming a lock to wait for.
- :func:`session_scope`: everything else, as pysqlite does it by default: statements
  before the first INSERT/UPDATE/DELETE run outside a transaction, which begins (deferred)
  just before that write, so no stale snapshot is held. Pages and jobs open one scope
  inside another (a page asks for a job's state while its own session is open, a job
  records progress while it reads): a scope taking the write lock up front would make
  such an inner scope wait for its own outer one, so this stays the default.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Execution option naming how a transaction begins: "write", "read", or absent (session_scope).
BEGIN_MODE = "tagrack_begin"
_SQLITE_BEGIN = {"write": "BEGIN IMMEDIATE", "read": "BEGIN"}


def _sqlite_pragmas(dbapi_conn: Any, record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")  # safe with WAL, much faster commits
    cur.close()
    record.info["query_only"] = False


def _sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get(BEGIN_MODE)
    # query_only belongs to the connection, not the transaction: set it wherever it changes,
    # so a pooled connection never carries a read scope's setting into the next unit of work.
    read_only = mode == "read"
    info = conn.connection.info
    if info.get("query_only") != read_only:
        conn.exec_driver_sql(f"PRAGMA query_only={'ON' if read_only else 'OFF'}")
        info["query_only"] = read_only
    if mode is not None:
        # pysqlite sees the open transaction and adds no BEGIN of its own; savepoints
        # inside it then nest as they should.
        conn.exec_driver_sql(_SQLITE_BEGIN[mode])


def _postgresql_begin(conn: Connection) -> None:
    # PostgreSQL's readers never wait for writers (MVCC) and a row lock is waited for, not
    # refused; a read scope is only made read-only.
    if conn.get_execution_options().get(BEGIN_MODE) == "read":
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")


def make_engine(url: str) -> Engine:
    """Creates an engine for ``url``; for SQLite, creates the folder and sets pragmas.

    Args:
        url: SQLAlchemy URL, e.g. ``sqlite:///tagrack-data/tagrack.db`` or
            ``postgresql+psycopg://user@host/db``.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    engine = create_engine(url, pool_pre_ping=True)
    event.listen(engine, "begin", _postgresql_begin)
    return engine


def is_lock_error(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite's "database is locked"/"busy" (the busy timeout ran out): worth a retry."""
    text = str(getattr(exc, "orig", exc)).lower()
    return isinstance(exc, OperationalError) and ("database is locked" in text or "database is busy" in text)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def _scope(engine: Engine, mode: str | None) -> Iterator[Session]:
    options = {BEGIN_MODE: mode} if mode else {}
    with Session(engine, expire_on_commit=False, execution_options=options) as session, session.begin():
        yield session


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A transaction: commits on success, rolls back on error (see the module docstring)."""
    with _scope(engine, None) as session:
        yield session


@contextmanager
def write_scope(engine: Engine) -> Iterator[Session]:
    """A unit of work that reads and then writes beside other writers; on SQLite it takes the write lock first.

    It waits for other writers (up to the busy timeout) before its first statement and
    then holds them up until it ends: keep it short.
    """
    with _scope(engine, "write") as session:
        yield session


@contextmanager
def read_scope(engine: Engine) -> Iterator[Session]:
    """A read-only transaction: one consistent snapshot that never waits for a writer.

    A write inside it fails ("attempt to write a readonly database" on SQLite, "read-only
    transaction" on PostgreSQL) instead of waiting for, or failing on, the write lock.
    """
    with _scope(engine, "read") as session:
        yield session
