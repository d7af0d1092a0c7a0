"""The README's set-up works as written on a fresh Debian/Ubuntu (issue 13, point 8).

Debian's Python refuses a bare ``pip install`` ("externally-managed-environment"), so the
set-up must make and activate a virtualenv first; and a newcomer should know what the
install costs and how long the tests take before starting them.
"""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end > 0 else None]


def _commands(section: str) -> list[str]:
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block, "a bash block"
    lines = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line]


def test_setup_makes_and_activates_a_venv_before_pip_install() -> None:
    cmds = _commands(_section("Set up and run"))
    venv = next(i for i, c in enumerate(cmds) if re.fullmatch(r"python3 -m venv \.venv", c))
    activate = next(i for i, c in enumerate(cmds) if c in (". .venv/bin/activate", "source .venv/bin/activate"))
    install = cmds.index("pip install -r requirements.txt")
    assert venv < activate < install < cmds.index("streamlit run app.py")


def test_setup_says_what_the_install_downloads_and_the_tests_how_long_they_take() -> None:
    setup = _section("Set up and run")
    assert re.search(r"\d+ MB", setup) and re.search(r"\d+(\.\d+)? GB", setup), "download and installed size"
    tests = _section("Tests")
    assert re.search(r"\d+ minutes", tests), "how long the suite takes"
    assert ". .venv/bin/activate" in tests or "same virtualenv" in tests
