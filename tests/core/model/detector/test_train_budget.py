"""Training on a time budget, the budget's learning-rate schedule, and early stopping."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from core.model.detector.data import memory_dataset
from core.model.detector.model import DetectorSpec
from core.model.detector.train import BudgetCosineDecay, EvalSet, TrainConfig, train

SPEC = DetectorSpec(class_names=("a", "b"), image_height=64, image_width=96, alpha=0.35, min_level=4)


def _examples(n: int):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (60, 90, 3), dtype=np.uint8) for _ in range(n)]
    boxes = [np.array([[10, 10, 50, 40]], np.float32) for _ in range(n)]
    labels = [np.array([i % 2], np.int32) for i in range(n)]
    return memory_dataset(images, boxes, labels)


def test_budget_schedule_warms_up_then_follows_the_spent_fraction() -> None:
    s = BudgetCosineDecay(peak=1e-3, warmup_steps=10)
    assert float(s(0)) == pytest.approx(1e-5)
    assert float(s(5)) == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5)
    assert float(s(50)) == pytest.approx(1e-3)  # nothing spent yet: the peak
    s.progress.assign(0.5)
    assert float(s(50)) == pytest.approx(1e-3 * (0.01 + 0.99 * 0.5))
    s.progress.assign(1.0)
    assert float(s(50)) == pytest.approx(1e-5)
    s.progress.assign(0.9)
    assert float(s(2)) < float(s(50)) or float(s(2)) == pytest.approx(float(s(50)))  # warm-up never overshoots


class _BuiltAtStart(keras.callbacks.Callback):
    """Records whether the optimizer's slots and the loss trackers exist before the first step."""

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.built = (self.model.optimizer.built, self.model._compile_loss.built)  # noqa: SLF001


def test_training_stops_when_the_budget_is_spent(tmp_path: Path) -> None:
    config = TrainConfig(epochs=10_000, budget_minutes=0.1, batch_size=4, eval_every=10_000)
    probe = _BuiltAtStart()
    result = train(SPEC, config, _examples(8), 8, tmp_path, extra_callbacks=[probe])
    # Built before the first step, not inside its trace: a traced step that creates variables is
    # traced twice, which cost the tiny test model 30 s of its start (core.model.detector.train).
    assert probe.built == (True, True)
    assert result.stopped == "budget"
    assert 1 <= len(result.history) < 10_000
    # 2 steps per epoch; the epoch the budget cut counts by the steps it ran
    assert [h["steps"] for h in result.history[:-1]] == [2] * (len(result.history) - 1)
    assert result.epochs_trained == sum(h["steps"] for h in result.history) / 2
    assert len(result.history) - 1 < result.epochs_trained <= len(result.history)
    assert (tmp_path / "best" / "model.keras").exists()
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["seconds"] >= 6.0  # it ran until the 0.1 minutes were spent


def test_early_stopping_keeps_the_best_version(tmp_path: Path) -> None:
    # Learning rate 0: validation mAP never improves after the first evaluation.
    config = TrainConfig(epochs=20, batch_size=4, learning_rate=0.0, patience=2, eval_every=1)
    result = train(SPEC, config, _examples(8), 8, tmp_path, val=EvalSet(_examples(4), 4))
    assert result.stopped == "early"
    assert len(result.history) == 3  # best at epoch 1, then two evaluations without progress
    assert result.best_epoch in (1, 2, 3)
