"""Image tags end to end: labels in, a tags model trained and run, one suggestion reviewed in the browser.

Every step but the review is ``python -m core`` (run in process: the same parser and jobs as the
shell): ``import labels`` from a CSV with its photos in a folder and from a class-folder tree,
``train --model tags`` (a tiny model: 64 px, random weights, one epoch, so the test stays quick),
``predict --images all``. Then the Review tags page in Chromium at 1400x900 takes the first
suggestion with the A key, and the decision is in the database and the accepted tag in the next
``export tags-csv``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from core.cli import main
from core.database import open_database
from core.review.tags import tags_queue
from core.settings import Settings
from db.engine import session_scope
from db.models import Image, ModelKind, ModelVersion, Project, ReviewDecision, TagPrediction
from tests.core.dataset_factory import jpeg_bytes
from tests.e2e.conftest import AppServer, screenshot, start_server, stop_server, wait_for_app

pytestmark = pytest.mark.e2e

PROJECT = "E2E tags flow"
# Colour is left out on two CSV rows and the tree has none: those images get open colour suggestions.
CSV_ROWS = [
    ("c0.jpg", "Shirt", "red"),
    ("c1.jpg", "Shoes", "blue"),
    ("c2.jpg", "Shirt", "blue"),
    ("c3.jpg", "Shoes", "red"),
    ("c4.jpg", "Shirt", ""),
    ("c5.jpg", "Shoes", ""),
]
TREE = {"Shirt": ["t0.jpg", "t1.jpg"], "Shoes": ["t2.jpg", "t3.jpg"]}


@dataclass
class Flow:
    server: AppServer
    settings: Settings
    cli: list[str]
    version_id: int


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    code = main(args)
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


@pytest.fixture
def flow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Flow]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    settings = Settings.resolve(f"sqlite:///{data_dir / 'tagrack.db'}", data_dir)
    cli = ["--db", settings.db_url, "--data-dir", str(data_dir), "--project", PROJECT]
    photos = tmp_path / "photos"
    photos.mkdir()
    for n, (name, _, _) in enumerate(CSV_ROWS):
        (photos / name).write_bytes(jpeg_bytes(64, 48, n))
    labels = tmp_path / "labels.csv"
    with open(labels, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "label", "colour", "sender"])
        writer.writerows([(name, label, colour, 7) for name, label, colour in CSV_ROWS])
    got = _cli(
        ["import", "labels", str(labels), "--images", str(photos), "--ignore-column", "sender", "--create", *cli],
        capsys,
    )
    assert (got["imported"], got["failed"]) == (6, 0)
    tree = tmp_path / "tree"
    for n, (label, names) in enumerate(TREE.items()):
        (tree / label).mkdir(parents=True)
        for k, name in enumerate(names):
            (tree / label / name).write_bytes(jpeg_bytes(64, 48, 100 + 10 * n + k))
    got = _cli(["import", "labels", str(tree), *cli], capsys)
    assert (got["imported"], got["failed"]) == (4, 0)

    train = ["train", "--model", "tags", "--weights", "none", "--image-size", "64", "--minutes", "0"]
    got = _cli([*train, "--epochs", "1", "--batch-size", "8", *cli], capsys)
    assert got["status"] == "succeeded", got["error"]
    version_id = got["result"]["model_version_id"]
    got = _cli(["predict", "--model-version", str(version_id), "--images", "all", *cli], capsys)
    assert got["status"] == "succeeded", got["error"]

    server = start_server(data_dir)
    try:
        yield Flow(server, settings, cli, version_id)
    finally:
        stop_server(server)


def test_labels_in_model_trained_suggestion_accepted_with_a_key_and_exported(  # type: ignore[no-untyped-def]
    page, flow: Flow, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = open_database(flow.settings)
    try:
        with session_scope(engine) as session:
            project = session.scalar(select(Project).where(Project.name == PROJECT))
            version = session.get(ModelVersion, flow.version_id)
            assert version.kind is ModelKind.TAGS
            assert version.params["heads"] == {"category": ["Shirt", "Shoes"], "colour": ["red", "blue"]}
            assert session.query(TagPrediction).count() == 2 * 10  # every image, both heads
            # The page's first item: every image stores its category, so only colour is open.
            queue = tags_queue(session, project.id, flow.version_id)
            assert sorted(s.image_name for s in queue) == ["c4.jpg", "c5.jpg", "t0.jpg", "t1.jpg", "t2.jpg", "t3.jpg"]
            first = queue[0]
            assert first.tag == "colour"
    finally:
        engine.dispose()

    page.goto(f"{flow.server.url}/review_tags")
    wait_for_app(page)
    page.get_by_text(f"{len(queue)} open suggestion(s) · {first.image_name}").wait_for()
    page.get_by_text(f"suggested · {first.confidence:.2f}").wait_for()
    accept = page.get_by_role("button", name=f"Accept {first.value}")
    box = accept.bounding_box()
    assert box is not None and box["y"] + box["height"] <= 900  # the key's button is on screen unscrolled
    page.keyboard.press("a")
    try:
        page.get_by_text(f"colour = {first.value} accepted").wait_for()
        page.get_by_text(f"{len(queue) - 1} open suggestion(s)").wait_for()
    except Exception:
        screenshot(page, "tags_flow_failed_accept")
        raise
    wait_for_app(page)

    engine = open_database(flow.settings)
    try:
        with session_scope(engine) as session:
            (decision,) = session.scalars(select(ReviewDecision)).all()
            assert (decision.decision, decision.who, decision.model_version_id) == (
                "accepted",
                "e2e-tester",
                flow.version_id,
            )
            assert decision.details == {
                "tag": "colour",
                "suggested": first.value,
                "chosen": first.value,
                "confidence": first.confidence,
            }
            image = session.get(Image, decision.image_id)
            assert image.original_name == first.image_name
            assert image.attributes["colour"] == first.value
    finally:
        engine.dispose()

    out = tmp_path / "export"
    _cli(["export", "tags-csv", str(out), *flow.cli], capsys)
    with open(out / "tags.csv", newline="", encoding="utf-8") as fh:
        rows = {r["image"]: r for r in csv.DictReader(fh)}
    assert rows[first.image_name]["colour"] == first.value
    assert rows[first.image_name]["category"] == (
        "Shirt" if first.image_name in ("c4.jpg", "t0.jpg", "t1.jpg") else "Shoes"
    )
    # Nothing else was accepted: the other open images still have no colour in the export.
    assert sorted(n for n, r in rows.items() if r["colour"]) == sorted(
        ["c0.jpg", "c1.jpg", "c2.jpg", "c3.jpg", first.image_name]
    )
