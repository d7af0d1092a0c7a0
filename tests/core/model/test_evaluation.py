"""The evaluation step on a real SQLite file: stored results agree with core.model.metrics.coco."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import Engine, select

from core.model import evaluation
from core.model.evaluation import (
    EvaluationError,
    evaluate_model_version,
    evaluated_versions,
    load_boxes,
    precision_recall_at,
)
from core.model.metrics import coco
from core.model.metrics.review import review_figures
from core.project.splits import assign_splits
from core.review.queue import DEFAULT_THRESHOLD
from core.settings import Settings
from db.engine import session_scope
from db.models import Label, ModelVersion
from tests.core.dataset_factory import make_dataset
from tests.core.evaluation_factory import fake_model_version

pytestmark = pytest.mark.both_databases  # the SQL of this module runs on SQLite and PostgreSQL


@pytest.fixture
def evaluated(engine: Engine, settings: Settings, project_id: int) -> tuple[int, int]:
    make_dataset(engine, settings, project_id, n=30)
    with session_scope(engine) as session:
        assign_splits(session, project_id, (0.4, 0.1, 0.5))
    return project_id, fake_model_version(engine, project_id)


def test_stored_results_match_coco_metrics(engine: Engine, settings: Settings, evaluated: tuple[int, int]) -> None:
    project_id, version_id = evaluated
    result = evaluate_model_version(engine, settings, version_id)
    assert result["newly_predicted"] == 0  # every test image already had predictions: no model needed
    with session_scope(engine) as session:
        ids = evaluation.test_image_ids(session, project_id)
        labels = list(session.scalars(select(Label.name).where(Label.project_id == project_id).order_by(Label.order)))
        gts, dts = load_boxes(session, project_id, version_id, ids)
        stored = session.get(ModelVersion, version_id).metrics["test"]["coco"]
        listed = evaluated_versions(session, project_id)
    assert ids and gts and dts and result["images"] == len(ids)
    assert listed == [(version_id, "fake v1", stored)]
    ref = coco.evaluate(gts, dts, labels)
    for key in ("map_75", "map_small", "map_medium", "map_large"):
        assert stored[key] == (None if math.isnan(getattr(ref, key)) else pytest.approx(getattr(ref, key), abs=1e-6))
    assert stored["review"]["0.7"] == review_figures(gts, dts, len(ids), DEFAULT_THRESHOLD, 0.7).to_dict()
    for t in ("0.3", "0.5", "0.8"):
        ref = coco.evaluate(gts, dts, labels, score_threshold=float(t))
        assert stored["map_50"] == pytest.approx(ref.map_50, abs=1e-6)
        assert stored["map_50_95"] == pytest.approx(ref.map_50_95, abs=1e-6)
        assert stored["at"][t]["confusion"] == ref.confusion.tolist()
        for name in labels:
            for ours, theirs in (
                (stored["at"][t]["precision"][name], ref.precision[name]),
                (stored["at"][t]["recall"][name], ref.recall[name]),
            ):
                assert (ours is None) == math.isnan(theirs) or (ours == 0.0 and theirs == 0.0), (t, name)
                if ours is not None and not math.isnan(theirs):
                    assert ours == pytest.approx(theirs, abs=1e-6)
    # The error lists are the 0.5 confusion matrix's off-diagonal and background cells.
    cm = stored["at"]["0.5"]["confusion"]
    n = len(labels)
    errors = stored["errors"]
    assert len(errors["false_positive"]) == min(100, sum(cm[n][:n]))
    assert len(errors["missed"]) == min(100, sum(cm[i][n] for i in range(n)))
    assert len(errors["wrong_class"]) == min(100, sum(cm[i][j] for i in range(n) for j in range(n) if i != j))
    assert all(e["label"] != e["true_label"] for e in errors["wrong_class"])
    scores = [e["score"] for e in errors["false_positive"]]
    assert scores == sorted(scores, reverse=True)


def test_train_metrics_are_kept_beside_the_coco_results(
    engine: Engine, settings: Settings, evaluated: tuple[int, int]
) -> None:
    _, version_id = evaluated
    with session_scope(engine) as session:
        session.get(ModelVersion, version_id).metrics = {"map50": 0.4, "test": {"map50": 0.41}}
    evaluate_model_version(engine, settings, version_id)
    with session_scope(engine) as session:
        metrics = session.get(ModelVersion, version_id).metrics
    assert metrics["map50"] == 0.4 and metrics["test"]["map50"] == 0.41 and "coco" in metrics["test"]


def test_summarise_reports_tight_boxes_small_garments_and_the_reviewer() -> None:
    from core.boxes import Box
    from core.model.metrics.types import Detection, GroundTruth

    jacket, glasses = Box(100, 100, 300, 400), Box(50, 40, 80, 60)  # 600 px²: COCO "small"
    gts = [GroundTruth(1, "Jackets", jacket), GroundTruth(1, "Sunglasses", glasses), GroundTruth(2, "Jackets", jacket)]
    dts = [
        Detection(1, "Jackets", jacket, 0.9),
        Detection(1, "Sunglasses", Box(50, 40, 86, 60), 0.8),  # IoU 0.83: right at 0.5 and 0.75
        Detection(2, "Jackets", Box(100, 100, 300, 515), 0.7),  # IoU 0.72: right at 0.5 and 0.7, not 0.75
    ]
    out = evaluation.summarise(gts, dts, ["Jackets", "Sunglasses"], n_images=3)  # image 3 has no boxes
    # At IoU 0.75 one jacket of two is found, first: precision 1 up to recall 0.5 (51 of 101 points).
    assert out["map_50"] == pytest.approx(1.0)
    assert out["ap_75"] == {"Jackets": pytest.approx(51 / 101, abs=1e-6), "Sunglasses": pytest.approx(1.0)}
    assert out["map_75"] == pytest.approx((51 / 101 + 1) / 2, abs=1e-6)
    assert out["ap_small"]["Jackets"] is None and out["ap_small"]["Sunglasses"] == out["map_small"] > 0
    assert out["map_medium"] is None and out["map_large"] is not None
    assert out["review"]["0.7"] == review_figures(gts, dts, 3, DEFAULT_THRESHOLD, 0.7).to_dict()
    assert out["review"]["0.7"]["acceptable"] == 3 and out["review"]["0.7"]["precision"] == 1.0
    assert out["review"]["0.5"]["iou_threshold"] == 0.5
    assert out["review"]["0.7"]["score_threshold"] == DEFAULT_THRESHOLD


def test_precision_recall_at_threshold_without_detections() -> None:
    from core.boxes import Box
    from core.model.metrics.types import GroundTruth

    m = coco.evaluate([GroundTruth(1, "a", Box(0, 0, 10, 10))], [], ["a", "b"])
    precision, recall = precision_recall_at(m, 0.5)
    assert precision == {"a": None, "b": None} and recall == {"a": 0.0, "b": None}


def test_no_test_images_is_a_clear_error(engine: Engine, settings: Settings, project_id: int) -> None:
    version_id = fake_model_version(engine, project_id)
    with pytest.raises(EvaluationError, match="no finished test images"):
        evaluate_model_version(engine, settings, version_id)
    with pytest.raises(EvaluationError, match="No model version #999"):
        evaluate_model_version(engine, settings, 999)


def test_cli_evaluate(
    engine: Engine, settings: Settings, evaluated: tuple[int, int], capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from core.cli import main

    _, version_id = evaluated
    args = ["--db", settings.db_url, "--data-dir", str(settings.data_dir)]
    assert main(["evaluate", *args, "--model-version", str(version_id)]) == 0
    text = capsys.readouterr().out
    out = json.loads(text[text.index('{\n  "job_id"') :])  # the worker may log lines first
    assert out["status"] == "succeeded" and out["result"]["model_version_id"] == version_id
    assert main(["evaluate", *args, "--model-version", "999"]) == 1
