"""The legacy torch checkpoint reader: exact round trip of hand-written files, refusal of foreign globals.

The checkpoints here are written byte by byte from numpy (no torch), following
``torch.serialization._legacy_save``: magic number, protocol version and system info
pickles, the object pickle with storages as persistent ids, the storage key list, then each
storage as an int64 element count and its raw little-endian bytes.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import pickletools
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from core.model.pretrained.torch_checkpoint import (
    MAGIC_NUMBER,
    CheckpointError,
    RestrictedUnpickler,
    load_state_dict,
    read_legacy_checkpoint,
)

_STORAGE_NAMES = {
    np.dtype("float32"): "FloatStorage",
    np.dtype("int64"): "LongStorage",
    np.dtype("float64"): "DoubleStorage",
}


def _literal(value: object) -> bytes:
    """Opcodes that push ``value`` (a str/int/tuple/None) without the PROTO header and STOP."""
    return pickletools.optimize(pickle.dumps(value, protocol=2))[2:-1]


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _tensor(key: str, storage_name: str, numel: int, offset: int, size: tuple, stride: tuple) -> bytes:
    """``_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`` as opcodes."""
    persistent_id = b"(" + _literal("storage") + _global("torch", storage_name)
    persistent_id += _literal(key) + _literal("cpu") + _literal(numel) + b"N" + b"t" + b"Q"  # TUPLE, BINPERSID
    hooks = _global("collections", "OrderedDict") + b")R"
    args = b"(" + persistent_id + _literal(offset) + _literal(size) + _literal(stride) + b"\x89" + hooks + b"t"
    return _global("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def legacy_checkpoint(
    tensors: dict[str, tuple[str, int, tuple, tuple]], storages: dict[str, np.ndarray], extra: bytes = b""
) -> bytes:
    """A legacy-format file: ``tensors`` maps name -> (storage key, offset, size, stride)."""
    out = io.BytesIO()
    pickle.dump(MAGIC_NUMBER, out, protocol=2)
    pickle.dump(1001, out, protocol=2)
    pickle.dump(
        {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}},
        out,
        protocol=2,
    )
    body = b"\x80\x02" + _global("collections", "OrderedDict") + b")R(" + extra
    for name, (key, offset, size, stride) in tensors.items():
        arr = storages[key]
        body += _literal(name) + _tensor(key, _STORAGE_NAMES[arr.dtype], arr.size, offset, size, stride)
    out.write(body + b"u.")  # SETITEMS, STOP
    keys = sorted(storages)
    pickle.dump(keys, out, protocol=2)
    for key in keys:
        arr = storages[key]
        out.write(struct.pack("<q", arr.size) + arr.astype(arr.dtype.newbyteorder("<")).tobytes())
    return out.getvalue()


def test_reads_a_handwritten_checkpoint_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    conv = rng.normal(size=(4, 3, 3, 3)).astype(np.float32)
    shared = rng.normal(size=20).astype(np.float32)
    counts = np.array([1431430], dtype=np.int64)
    data = legacy_checkpoint(
        {
            "conv.weight": ("k_conv", 0, (4, 3, 3, 3), (27, 9, 3, 1)),
            # Two tensors in one storage: an offset slice and a transposed (non-contiguous) view.
            "a.bias": ("k_shared", 5, (3,), (1,)),
            "b.weight_t": ("k_shared", 0, (5, 4), (1, 5)),
            "bn.num_batches_tracked": ("k_count", 0, (), ()),
            "double": ("k_f64", 0, (2,), (1,)),
        },
        {"k_conv": conv, "k_shared": shared, "k_count": counts, "k_f64": np.array([0.1, -2.5])},
    )
    path = tmp_path / "tiny.pth"
    path.write_bytes(data)

    sd = load_state_dict(path)

    assert list(sd) == ["conv.weight", "a.bias", "b.weight_t", "bn.num_batches_tracked", "double"]
    np.testing.assert_array_equal(sd["conv.weight"], conv)
    np.testing.assert_array_equal(sd["a.bias"], shared[5:8])
    np.testing.assert_array_equal(sd["b.weight_t"], shared.reshape(4, 5).T)
    assert sd["bn.num_batches_tracked"].shape == () and sd["bn.num_batches_tracked"] == 1431430
    assert sd["bn.num_batches_tracked"].dtype == np.int64 and sd["double"].dtype == np.float64
    assert sd["b.weight_t"].flags.c_contiguous and sd["conv.weight"].dtype == np.float32
    # The same bytes through a file object and as bytes give the same result.
    np.testing.assert_array_equal(read_legacy_checkpoint(io.BytesIO(data))["b.weight_t"], sd["b.weight_t"])


def test_truncated_and_zip_files_get_clear_errors(tmp_path: Path) -> None:
    data = legacy_checkpoint({"w": ("k", 0, (2,), (1,))}, {"k": np.ones(2, np.float32)})
    with pytest.raises(CheckpointError, match="ends inside storage"):
        read_legacy_checkpoint(data[:-3])
    with pytest.raises(CheckpointError, match="magic number"):
        read_legacy_checkpoint(pickle.dumps(12345, protocol=2) + data)
    with pytest.raises(CheckpointError, match="zip-format"):
        read_legacy_checkpoint(b"PK\x03\x04rest-of-a-zip")
    with pytest.raises(CheckpointError, match="outside its storage"):
        read_legacy_checkpoint(legacy_checkpoint({"w": ("k", 1, (2,), (1,))}, {"k": np.ones(2, np.float32)}))


class _Evil:
    """Pickles as a call of ``target(*args)``, like a tampered checkpoint would."""

    def __init__(self, target: object, args: tuple) -> None:
        self.target, self.args = target, args

    def __reduce__(self) -> tuple:
        return self.target, self.args


@pytest.mark.parametrize("protocol", [2, 4])  # GLOBAL and STACK_GLOBAL opcodes
@pytest.mark.parametrize(
    ("target", "qualname"),
    [(os.system, ".system'"), (eval, ".eval'"), (subprocess.Popen, ".Popen'"), (getattr, ".getattr'")],
)
def test_unpickler_refuses_any_other_global(tmp_path: Path, protocol: int, target: object, qualname: str) -> None:
    marker = tmp_path / "pwned"
    args = {
        os.system: (f"touch {marker}",),
        eval: (f"open({str(marker)!r}, 'w')",),
        subprocess.Popen: (["touch", str(marker)],),
        getattr: ("abc", "upper"),
    }[target]
    payload = pickle.dumps(_Evil(target, args), protocol=protocol)

    with pytest.raises(CheckpointError, match="refusing to load global") as info:
        RestrictedUnpickler(io.BytesIO(payload)).load()
    # The message names the global (protocol 2 writes Python 2 module names such as __builtin__).
    assert qualname in str(info.value)
    # Hidden inside an otherwise valid checkpoint (as a state-dict value), it is refused too.
    tampered = legacy_checkpoint({}, {}, extra=_literal("x") + pickletools.optimize(payload)[2:-1])
    with pytest.raises(CheckpointError, match="refusing to load global"):
        load_state_dict(tampered)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("torch.storage", "_load_from_bytes"),  # torch.load would unpickle a whole nested file with it
        ("torch._utils", "_rebuild_device_tensor_from_numpy"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("torch", "load"),
        ("collections", "defaultdict"),
    ],
)
def test_near_miss_names_are_refused_before_anything_runs(module: str, name: str) -> None:
    payload = b"\x80\x02" + _global(module, name) + b")R."
    with pytest.raises(CheckpointError, match=f"'{module}.{name}'"):
        RestrictedUnpickler(io.BytesIO(payload)).load()


def test_a_global_in_the_header_pickles_is_refused() -> None:
    evil_magic = pickle.dumps(_Evil(os.system, ("true",)), protocol=2)
    with pytest.raises(CheckpointError, match="os.system|posix.system"):
        read_legacy_checkpoint(evil_magic)


def test_allowed_names_still_load_a_plain_ordered_dict() -> None:
    od = collections.OrderedDict([("a", 1), ("b", (2, 3))])
    assert RestrictedUnpickler(io.BytesIO(pickle.dumps(od, protocol=2))).load() == od
