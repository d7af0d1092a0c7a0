"""``python -m core train`` options: the minutes budget, patience, epochs and size reach the job's parameters.

No training runs here: parsing is checked in-process, and the user errors through a real
subprocess on a real SQLite file, which stop before a job is created.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from core.cli import CliError, build_parser, train_params_from_args
from core.model.training import DEFAULTS
from core.project.projects import create_project
from core.settings import Settings
from db.engine import session_scope
from db.models import Job

ROOT = Path(__file__).resolve().parents[2]


def _params(*argv: str) -> dict:
    return train_params_from_args(build_parser().parse_args(["train", "--project", "P", *argv]), 7)


def test_defaults_are_the_minutes_budget_and_auto_everything() -> None:
    params = _params()
    assert params["project_id"] == 7
    for key in ("budget_minutes", "epochs", "patience", "weights", "image_width", "image_height"):
        assert params[key] == DEFAULTS[key]
    assert params["budget_minutes"] == 15 and params["weights"] == "auto" and params["image_width"] == "auto"


def test_minutes_patience_epochs_size_and_weights_reach_the_params() -> None:
    params = _params(
        "--minutes", "2.5", "--patience", "3", "--epochs", "40", "--size", "448x288", "--weights", "imagenet-offline"
    )
    assert params["budget_minutes"] == 2.5 and params["patience"] == 3 and params["epochs"] == 40
    assert (params["image_width"], params["image_height"]) == (448, 288)
    assert params["weights"] == "imagenet-offline"
    assert _params("--size", "AUTO")["image_width"] == "auto"


def test_the_fit_rule_defaults_to_all_boxes_and_classes_can_be_chosen() -> None:
    assert _params()["fit_rule"] == DEFAULTS["fit_rule"] == "boxes"
    assert _params("--fit-rule", "classes")["fit_rule"] == "classes"
    with pytest.raises(SystemExit):  # argparse refuses anything else, with the choices in its message
        _params("--fit-rule", "largest")


def test_box_loss_and_test_time_flip_reach_the_params() -> None:
    assert _params()["box_loss"] == DEFAULTS["box_loss"]
    assert _params("--box-loss", "huber")["box_loss"] == "huber"
    assert _params("--box-loss", "huber+ciou")["box_loss"] == "huber+ciou"
    assert _params()["test_time_flip"] is DEFAULTS["test_time_flip"] is False
    assert _params("--test-time-flip")["test_time_flip"] is True
    with pytest.raises(SystemExit):
        _params("--box-loss", "giou")


def test_minutes_zero_trains_for_epochs_and_patience_zero_never_stops_early() -> None:
    params = _params("--minutes", "0", "--epochs", "12", "--patience", "0")
    assert params["budget_minutes"] is None and params["epochs"] == 12 and params["patience"] is None
    with pytest.raises(CliError, match="--minutes 0 .* --epochs N"):
        _params("--minutes", "0")
    with pytest.raises(CliError, match="multiples of 32"):
        _params("--size", "300x200")
    with pytest.raises(CliError, match="256x192 or be auto"):
        _params("--size", "big")


def test_user_errors_through_the_command_line_create_no_job(settings: Settings, engine: Engine) -> None:
    with session_scope(engine) as session:
        create_project(session, "Shop")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "core",
                "train",
                *args,
                "--db",
                settings.db_url,
                "--data-dir",
                str(settings.data_dir),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    run = cli("--project", "Shop", "--minutes", "-1")
    assert run.returncode == 2 and "give minutes >= 0" in run.stderr
    run = cli("--project", "Shop", "--minutes", "0")
    assert run.returncode == 1 and "--epochs N" in run.stderr and "Traceback" not in run.stderr
    run = cli("--project", "Shop", "--size", "300x200")
    assert run.returncode == 1 and "multiples of 32" in run.stderr
    with session_scope(engine) as session:
        assert session.scalars(select(Job)).first() is None
