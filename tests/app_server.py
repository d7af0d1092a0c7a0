"""A real ``streamlit run app.py`` on a free loopback port: the browser tests' server and the browser load run's."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class AppServer:
    """A running ``streamlit run app.py`` and where its data lives."""

    url: str
    db_url: str
    data_dir: Path
    process: subprocess.Popen
    log_path: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    data_dir: Path,
    extra_env: dict[str, str] | None = None,
    timeout: float = 120.0,
    auth: bool = False,
    db_url: str | None = None,
    log_path: Path | None = None,
) -> AppServer:
    """Starts the app on a free loopback port and waits until it answers.

    Tests that are not about signing in run it with ``--no-auth`` (allowed on loopback);
    ``auth=True`` starts it as people run it, with the sign-in gate (tests/e2e/test_auth.py).
    ``db_url`` defaults to a SQLite file in ``data_dir``; the log goes beside ``data_dir``
    unless ``log_path`` says where.
    """
    port = _free_port()
    db_url = db_url or f"sqlite:///{data_dir / 'tagrack.db'}"
    log_path = log_path or data_dir.parent / f"streamlit-{port}.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    env = dict(os.environ, **{"TAGRACK_USER": "e2e-tester", **(extra_env or {})})
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "app.py"),
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
            "--server.fileWatcherType",
            "none",
            "--",
            "--db",
            db_url,
            "--data-dir",
            str(data_dir),
            *([] if auth else ["--no-auth"]),
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early; see {log_path}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return AppServer(url=url, db_url=db_url, data_dir=data_dir, process=proc, log_path=log_path)
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"streamlit did not answer within {timeout:.0f}s; see {log_path}")


def stop_server(server: AppServer) -> None:
    """Stops the server process."""
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
