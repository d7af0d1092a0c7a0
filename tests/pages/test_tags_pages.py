"""Train and Evaluate pages with the tags model (AppTest, real database, the demo project)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from core.database import open_database
from core.model.tags.evaluation import evaluate_heads, headline
from core.settings import Settings
from db.engine import session_scope
from db.models import Image, Job, JobStatus, ModelKind, ModelVersion, Project


def _open(make_app: Callable[[], AppTest], page: str) -> AppTest:
    at = make_app().run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def test_train_page_starts_a_tags_training(make_app: Callable[[], AppTest], monkeypatch: pytest.MonkeyPatch) -> None:
    launched: list[int] = []
    monkeypatch.setattr("ui.jobs.launch", lambda settings, job_id, engine: launched.append(job_id) or 0)
    at = _open(make_app, "pages/train.py")
    at.radio(key="train_model_kind").set_value("tags").run()
    assert not at.exception, at.exception
    assert not any(b.label == "Start training" for b in at.button)  # the detector form is gone
    # The demo's images have boxes, so each takes its category from its largest box.
    summary = at.dataframe[0].value
    assert "category" in set(summary["tag"])
    next(b for b in at.button if b.label == "Start tags training").click().run()
    assert not at.exception, at.exception
    from ui.context import get_context

    with session_scope(get_context().engine) as session:
        job = session.scalars(select(Job).where(Job.kind == "train-tags")).one()
        assert job.id in launched and job.status is JobStatus.QUEUED
        assert job.params["budget_minutes"] == 15.0 and job.params["balance"] == "weights"
        # The form starts on the job's defaults.
        from core.model.tags.jobs import DEFAULTS

        for key in ("image_size", "views", "flip_average", "members", "patience", "learning_rate"):
            assert job.params[key] == DEFAULTS[key], key


@pytest.fixture
def tags_version_env(app_env: Path) -> int:
    """A tags version whose stored metrics come from real evaluation code on made-up logits."""
    settings = Settings.resolve(f"sqlite:///{app_env / 'tagrack.db'}", app_env)
    engine = open_database(settings)
    heads = {"category": ["Dress", "Shirt", "Shoes"]}
    with session_scope(engine) as session:
        pid = session.scalar(select(Project.id))
        ids = list(session.scalars(select(Image.id).where(Image.project_id == pid).order_by(Image.id).limit(30)))
        rng = np.random.default_rng(0)
        labels = rng.integers(0, 3, (len(ids), 1))
        logits = [rng.normal(0, 1, (len(ids), 3)) + 2 * np.eye(3)[labels[:, 0]]]
        per_head = evaluate_heads(logits, labels, heads, ids, {"category": 1.3})
        version = ModelVersion(
            project_id=pid,
            kind=ModelKind.TAGS,
            name="tags fake",
            path="missing/model.keras",
            params={"heads": heads, "temperatures": {"category": 1.3}},
            metrics={"test": per_head, "evaluated_on": "test", **headline(per_head), "best_epoch": 3},
        )
        session.add(version)
        session.flush()
        version_id = version.id
    engine.dispose()
    return version_id


def test_evaluate_page_shows_a_tags_version(make_app: Callable[[], AppTest], tags_version_env: int) -> None:
    at = _open(make_app, "pages/evaluate.py")
    # The detector tab never offers a tags version for COCO evaluation.
    assert not any(s.label == "Evaluate on the test split" for s in at.selectbox)
    labels = {m.label for m in at.metric}
    assert {"Top-1", "Top-5", "ECE before", "ECE after", "Balanced accuracy"} <= labels
    assert any(s.value == "Most confused" for s in at.subheader)
    assert any(b.help == "Open on Annotate" for b in at.button)
    table = at.dataframe
    assert any("tags fake" in set(t.value.get("model version", [])) for t in table if "model version" in t.value)
    # Labels to check: the wrong test images whose stored category the model finds least likely, each opening on Annotate.
    assert any(e.label.startswith("Labels to check · the ") for e in at.expander)
    check = [b for b in at.button if (b.key or "").startswith(f"tags_check_{tags_version_env}_category_")]
    assert check and all(b.help == "Open on Annotate" for b in check)


def test_evaluate_page_shows_a_tags_version_stored_before_labels_to_check(
    make_app: Callable[[], AppTest], tags_version_env: int, app_env: Path
) -> None:
    engine = open_database(Settings.resolve(f"sqlite:///{app_env / 'tagrack.db'}", app_env))
    with session_scope(engine) as session:
        version = session.get(ModelVersion, tags_version_env)
        metrics = dict(version.metrics)
        metrics["test"] = {
            t: {k: v for k, v in h.items() if k != "labels_to_check"} for t, h in metrics["test"].items()
        }
        version.metrics = metrics
    engine.dispose()
    at = _open(make_app, "pages/evaluate.py")
    assert any(s.value == "Most confused" for s in at.subheader)
    assert not any(e.label.startswith("Labels to check") for e in at.expander)


def test_evaluate_page_names_the_split_a_version_was_evaluated_on(
    make_app: Callable[[], AppTest], tags_version_env: int, app_env: Path
) -> None:
    # A project without test images is evaluated on validation: the page must not call those test images.
    engine = open_database(Settings.resolve(f"sqlite:///{app_env / 'tagrack.db'}", app_env))
    with session_scope(engine) as session:
        version = session.get(ModelVersion, tags_version_env)
        metrics = {k: v for k, v in version.metrics.items() if k != "test"}
        version.metrics = {**metrics, "val": version.metrics["test"], "evaluated_on": "val"}
    engine.dispose()
    at = _open(make_app, "pages/evaluate.py")
    assert any(e.label.startswith("Labels to check · the ") and " val images " in e.label for e in at.expander)
    assert any(c.value.startswith("Per value (") and " val images " in c.value for c in at.caption)
