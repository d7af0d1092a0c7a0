"""benchmarks/accuracy.py's own logic, without training: --scale and --seeds wiring, per-start means."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import accuracy
from tests.benchmarks.test_scaled_voc import make_voc


def run(review_share: float | None, weights: str, seed: int, map50: float) -> dict:
    figures = {"acceptable_share": review_share, "precision": 0.5, "recall": 0.25}
    return {
        "weights": weights,
        "seed": seed,
        "test_coco_map50": map50,
        "test_coco_map50_95": 0.3,
        "test_coco_map75": 0.2,
        "test_coco_map_small": None,
        "images_per_s": 4.0,
        "review": {"0.7": figures, "0.5": figures},
    }


def test_seed_means_average_each_start_and_leave_undefined_figures_undefined() -> None:
    runs = [run(0.1, "imagenet-offline", 0, 0.6), run(0.2, "imagenet-offline", 1, 0.7), run(None, "none", 0, 0.2)]
    means = accuracy.seed_means(runs)
    assert list(means) == ["imagenet-offline", "none"]
    mine = means["imagenet-offline"]
    assert mine["seeds"] == [0, 1] and mine["test_coco_map50"] == pytest.approx(0.65)
    assert mine["review_0.7_acceptable_share"] == pytest.approx(0.15) and mine["test_coco_map_small"] is None
    assert means["none"]["review_0.5_acceptable_share"] is None and means["none"]["review_0.5_recall"] == 0.25


def test_seed_given_twice_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.argv", ["accuracy.py", "--seeds", "0", "1", "--set", "seed=3"])
    with pytest.raises(SystemExit) as exc:
        accuracy.main()
    assert exc.value.code == 2


def test_scale_imports_the_scaled_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "tiny-voc"
    make_voc(source)
    data = tmp_path / "data"
    argv = ["accuracy.py", "--dataset", str(source), "--data-dir", str(data), "--scale", "0.5", "--fit-only"]
    monkeypatch.setattr("sys.argv", argv)
    assert accuracy.main() == 0
    report = json.loads(capsys.readouterr().out)
    assert report["scale"] == 0.5 and report["dataset"] == str(data / "tiny-voc-scaled-0.5")
    assert report["import"]["splits"] == {"train": 1, "test": 1}
