"""Server-side cost of the sign-in gate on a page run: ``python benchmarks/signin.py [--rounds N]``.

Runs the real app (app.py, Home page) in Streamlit's AppTest, in-process, twice side by side
on one SQLite file: signed in (the gate looks the session token up and rereads the role on
every run) and with ``--no-auth`` (no lookup), interleaved round by round; the difference of
the medians is what the gate adds to a page run (target < 50 ms). The database holds 50
accounts and 2,000 sessions, so the token lookup has rows to search.

Also times the gate's database work alone (``resolve_session`` + ``role_in``) and, for
reference, one sign-in (an argon2id verification: paid once per sign-in, not per page run).
As benchmarks/annotate.py, the harness shares one compiled-script cache as a server does.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.annotate import _shared_script_cache, _stable_navigation  # noqa: E402
from core.accounts.signin import resolve_session, sign_in, start_session  # noqa: E402
from core.accounts.users import add_account, get_account, role_in  # noqa: E402
from core.database import open_database  # noqa: E402
from core.project.projects import create_project  # noqa: E402
from core.settings import Settings  # noqa: E402
from db.engine import session_scope  # noqa: E402

PASSWORD = "bench-password"


def _prepare(work: Path) -> Settings:
    """A project, 50 accounts and 2,000 sessions."""
    settings = Settings.resolve(f"sqlite:///{work / 'tagrack.db'}", work / "data")
    engine = open_database(settings)
    with session_scope(engine) as session:
        create_project(session, "Bench")
        for i in range(50):
            add_account(session, f"person{i:02d}", PASSWORD, "admin" if i == 0 else "annotator")
    with session_scope(engine) as session:
        # Straight to start_session: 2,000 argon2id checks would only slow the set-up.
        accounts = [get_account(session, f"person{i:02d}") for i in range(50)]
        for i in range(2000):
            start_session(session, accounts[i % 50])
    engine.dispose()
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()

    from streamlit import config
    from streamlit.testing.v1 import AppTest

    _stable_navigation()
    _shared_script_cache()
    config.set_option("server.address", "127.0.0.1")  # --no-auth is allowed on loopback only
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        settings = _prepare(Path(tmp))
        prepare_s = time.perf_counter() - t
        os.environ.update(TAGRACK_DATA_DIR=str(settings.data_dir), TAGRACK_DB_URL=settings.db_url, TAGRACK_USER="bench")

        os.environ.pop("TAGRACK_NO_AUTH", None)
        signed = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
        next(x for x in signed.text_input if x.label == "User name").input("person00")
        next(x for x in signed.text_input if x.label == "Password").input(PASSWORD)
        next(b for b in signed.button if b.label == "Sign in").click().run()
        assert not signed.exception and any("Signed in as" in m.value for m in signed.sidebar.markdown)
        os.environ["TAGRACK_NO_AUTH"] = "1"
        open_app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
        assert not open_app.exception and open_app.metric

        signed_ms: list[float] = []
        open_ms: list[float] = []
        for _ in range(args.rounds):
            os.environ.pop("TAGRACK_NO_AUTH", None)
            t = time.perf_counter()
            signed.run()
            signed_ms.append((time.perf_counter() - t) * 1000)
            assert signed.metric, "the signed-in run must reach the page"
            os.environ["TAGRACK_NO_AUTH"] = "1"
            t = time.perf_counter()
            open_app.run()
            open_ms.append((time.perf_counter() - t) * 1000)

        engine = open_database(settings)
        with session_scope(engine) as session:
            token = sign_in(session, "person01", PASSWORD).token
        lookup_ms: list[float] = []
        for _ in range(args.rounds * 10):
            t = time.perf_counter()
            with session_scope(engine) as session:
                account = resolve_session(session, token)
                assert account is not None
                role_in(session, account, 1)
            lookup_ms.append((time.perf_counter() - t) * 1000)
        sign_in_ms: list[float] = []
        for _ in range(5):
            t = time.perf_counter()
            with session_scope(engine) as session:
                assert sign_in(session, "person02", PASSWORD).ok
            sign_in_ms.append((time.perf_counter() - t) * 1000)
        engine.dispose()

    med = statistics.median
    load = os.getloadavg()[0]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"load average (1 min) at the end: {load:.1f}; setup {prepare_s:.0f} s; rounds: {args.rounds}")
    print(f"{'what':<52}{'median ms':>10}{'p90 ms':>9}")
    for name, xs in [
        ("Home page run, signed in (gate on)", signed_ms),
        ("Home page run, --no-auth (no gate)", open_ms),
        ("gate's database work alone (token + role)", lookup_ms),
        ("one sign-in (argon2id verify + session row)", sign_in_ms),
    ]:
        p90 = sorted(xs)[max(0, round(0.9 * len(xs)) - 1)]
        print(f"{name:<52}{med(xs):>10.1f}{p90:>9.1f}")
    print(f"{'gate adds to a page run (difference of medians)':<52}{med(signed_ms) - med(open_ms):>10.1f}")


if __name__ == "__main__":
    main()
