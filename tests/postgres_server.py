"""A throwaway PostgreSQL server for the tests: Debian's binaries, a temporary cluster, loopback only.

The same tests that run on a SQLite file run on it (see ``tests/conftest.py``), so the SQL
that the pages and jobs issue (window functions in the review queue, bulk selects in the
export, the optimistic-locking update on save, Alembic's migrations) is checked on the
server database the README offers, not only on the embedded one. Nothing here is
mocked: ``initdb`` makes a real cluster and ``pg_ctl`` starts a real server.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path


def find_bin_dir() -> Path | None:
    """The folder with ``initdb`` and ``pg_ctl``: on PATH, else Debian's ``/usr/lib/postgresql/N/bin``."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    """A running cluster; :meth:`new_database` gives each test its own empty database."""

    root: Path
    port: int
    run_as: list[str]
    bin_dir: Path
    _ids: count = field(default_factory=lambda: count(1))

    def new_database(self) -> str:
        """Creates an empty database and returns its SQLAlchemy URL."""
        import psycopg

        name = f"tagrack_test_{os.getpid()}_{next(self._ids)}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        subprocess.run(
            [*self.run_as, str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def start_server() -> PostgresServer:
    """initdb + pg_ctl start on a free loopback port, trust authentication, durability off (tests only).

    PostgreSQL refuses to run as root; as root the cluster belongs to the ``postgres``
    user that Debian's package creates.

    Raises:
        RuntimeError: No PostgreSQL binaries, or the server did not start (with its log).
    """
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed (no initdb): apt-get install -y postgresql")
    root = Path(tempfile.mkdtemp(prefix="tagrack-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data, log = root / "data", root / "server.log"
    init = subprocess.run(
        [
            *run_as,
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if init.returncode != 0:
        raise RuntimeError(f"initdb failed: {init.stderr}")
    port = _free_port()
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=200"
    )
    start = subprocess.run(
        [*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"],
        capture_output=True,
        text=True,
        check=False,
    )
    if start.returncode != 0:
        text = log.read_text() if log.exists() else ""
        raise RuntimeError(f"PostgreSQL did not start: {start.stderr}\n{text}")
    return PostgresServer(root, port, run_as, bin_dir)
