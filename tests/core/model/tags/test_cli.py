"""``python -m core`` with tags versions, as a user runs it (subprocesses on a copy of the trained database)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.database import open_database
from db.engine import session_scope
from db.models import ModelVersion
from tests.core.model.tags.conftest import SCHEMA, copy_of, picture

ROOT = Path(__file__).resolve().parents[4]


def cli(settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core", *args, "--db", settings.db_url, "--data-dir", str(settings.data_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_predict_files_prints_tags_with_confidences(tags_trained, tmp_path: Path) -> None:
    settings = copy_of(tags_trained, tmp_path)
    version_id = tags_trained[3]
    photo = tmp_path / "new.jpg"
    photo.write_bytes(picture("Shirt", "red", 99))
    run = cli(settings, "predict", "--model-version", str(version_id), str(photo), "--min-score", "0")
    assert run.returncode == 0, run.stderr
    (out,) = json.loads(run.stdout)
    assert out["image"] == str(photo)
    assert set(out["tags"]) == set(SCHEMA)
    for tag, t in out["tags"].items():
        assert t["value"] in SCHEMA[tag] and 0 <= t["confidence"] <= 1
        assert len(t["alternatives"]) == len(SCHEMA[tag]) - 1  # --min-score 0 lists every other value
    assert "category=" in run.stderr  # the human-readable line


def test_evaluate_a_tags_version_stores_its_test_figures(tags_trained, tmp_path: Path) -> None:
    settings = copy_of(tags_trained, tmp_path)
    version_id = tags_trained[3]
    run = cli(settings, "evaluate", "--model-version", str(version_id))
    assert run.returncode == 0, run.stderr
    # An in-process job logs to stderr: stdout is the command's JSON alone, for scripts to parse.
    out = json.loads(run.stdout)
    assert out["status"] == "succeeded"
    assert "] " in run.stderr  # the job's log lines
    # The page's "Labels to check", named: wrong predictions only, the stored value's probability rising.
    to_check = out["result"]["labels_to_check"]
    assert set(to_check) == set(SCHEMA)
    for tag, items in to_check.items():
        assert all(i["label"] != i["predicted"] and i["label"] in SCHEMA[tag] and i["image"] for i in items)
        probs = [i["label_probability"] for i in items]
        assert probs == sorted(probs)
    engine = open_database(settings)
    with session_scope(engine) as session:
        metrics = session.get(ModelVersion, version_id).metrics
        assert set(metrics["test"]) == set(SCHEMA) and metrics["evaluated_on"] == "test"
        assert metrics["test"]["category"]["confusion"]
    engine.dispose()


def test_train_tags_on_a_project_without_tags_says_what_to_do(tmp_path: Path) -> None:
    from core.settings import Settings

    settings = Settings.resolve(db_url=f"sqlite:///{tmp_path / 'db.sqlite'}", data_dir=tmp_path / "data")
    assert cli(settings, "projects").returncode == 0
    from core.project.projects import create_project

    engine = open_database(settings)
    with session_scope(engine) as session:
        create_project(session, "Empty")
    engine.dispose()
    run = cli(settings, "train", "--model", "tags", "--project", "Empty")
    assert run.returncode == 1
    assert "No image of this project has a stored tag" in run.stdout + run.stderr


def test_train_options_become_the_jobs_parameters() -> None:
    from core.cli import build_parser
    from core.model.tags.cli import train_params
    from core.model.tags.jobs import DEFAULTS

    parser = build_parser()
    args = parser.parse_args(["train", "--model", "tags", "--project", "p"])
    assert {k: v for k, v in train_params(args, 3).items() if k != "project_id"} == DEFAULTS
    args = parser.parse_args(
        ["train", "--model", "tags", "--project", "p", "--views", "4", "--image-size", "288", "--no-flip-average"]
    )
    params = train_params(args, 3)
    assert (params["views"], params["image_size"], params["flip_average"]) == (4, 288, False)
    args = parser.parse_args(["train", "--model", "tags", "--project", "p", "--flip-average"])
    assert train_params(args, 3)["flip_average"] is True
    args = parser.parse_args(["train", "--model", "tags", "--project", "p", "--members", "2"])
    assert train_params(args, 3)["members"] == 2


@pytest.mark.parametrize("members", [0, 9, 2.5, "3"])
def test_a_members_count_out_of_range_is_refused_with_the_range(members: object) -> None:
    from core.model.tags.jobs import TagsJobError, tags_train_params

    with pytest.raises(TagsJobError, match="members must be a whole number from 1 to 8"):
        tags_train_params(3, members=members)
