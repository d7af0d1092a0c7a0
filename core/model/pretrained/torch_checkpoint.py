"""Reads PyTorch's legacy (pre-zip) checkpoint format into numpy arrays, without torch.

Why by hand: importing torch to read one file would add a 700 MB dependency, and
``torch.load`` on an untrusted file runs arbitrary code unless ``weights_only`` is set. The
legacy format, written by ``torch.save(..., _use_new_zipfile_serialization=False)`` and by
every torch before 1.6, is a plain sequence in one file:

1. a pickle of the magic number ``0x1950a86a20f9469cfc6c``;
2. a pickle of the protocol version (1001);
3. a pickle of the system info (``little_endian``, ``type_sizes``);
4. the object pickle (usually an ``OrderedDict`` state dict) in which each tensor is
   ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` and each storage a
   persistent id ``("storage", torch.FloatStorage, key, location, numel, view_metadata)``;
5. a pickle of the list of storage keys;
6. for each of those keys, in that order: an int64 element count and the storage's raw bytes.

Every pickle goes through :class:`RestrictedUnpickler`, whose ``find_class`` accepts only the
few globals such a file needs and refuses everything else, so a tampered file cannot call
``os.system`` or anything else while it is read.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

# Storage classes as they appear in legacy files -> numpy element type. BFloat16 has no numpy
# type; it is read as uint16 and widened to float32 (bfloat16 is the top half of a float32).
_STORAGE_DTYPES: dict[str, str] = {
    "FloatStorage": "f4",
    "DoubleStorage": "f8",
    "HalfStorage": "f2",
    "BFloat16Storage": "u2",
    "LongStorage": "i8",
    "IntStorage": "i4",
    "ShortStorage": "i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


class CheckpointError(ValueError):
    """The file is not a readable legacy torch checkpoint, or it names a forbidden global."""


@dataclass(frozen=True)
class _StorageType:
    """Stands in for ``torch.FloatStorage`` and friends: only its element type matters."""

    name: str

    @property
    def dtype(self) -> str:
        return _STORAGE_DTYPES[self.name]


@dataclass
class _StorageRef:
    """A storage named in the object pickle; its bytes come later in the file."""

    key: str
    storage_type: _StorageType
    numel: int
    view: tuple[str, int, int] | None = None  # (view key, offset, size) for very old files
    data: np.ndarray | None = None


@dataclass
class _TensorRef:
    """A tensor waiting for its storage's bytes: offset, size and stride are in elements."""

    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage: Any, storage_offset: int, size: Any, stride: Any, *_ignored: Any) -> _TensorRef:
    """Our stand-in for ``torch._utils._rebuild_tensor(_v2)``; extra arguments (requires_grad, hooks) don't matter."""
    if not isinstance(storage, _StorageRef):
        raise CheckpointError("a tensor refers to something that is not a storage")
    try:
        size_t = tuple(int(s) for s in size)
        stride_t = tuple(int(s) for s in stride)
    except TypeError as exc:
        raise CheckpointError(f"bad tensor size/stride: {size!r} / {stride!r}") from exc
    if len(size_t) != len(stride_t) or any(s < 0 for s in size_t) or any(s < 0 for s in stride_t):
        raise CheckpointError(f"bad tensor size/stride: {size_t} / {stride_t}")
    return _TensorRef(storage, int(storage_offset), size_t, stride_t)


def _rebuild_parameter(data: Any, requires_grad: Any = None, backward_hooks: Any = None) -> Any:
    """``torch.nn.Parameter`` in a checkpoint: the data is all we keep."""
    return data


_ALLOWED: dict[tuple[str, str], Callable[..., Any] | type] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals a legacy torch checkpoint needs.

    Accepted: ``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` /
    ``_rebuild_tensor`` / ``_rebuild_parameter`` (all replaced by numpy-side stand-ins) and the
    storage classes ``torch.FloatStorage``, ``torch.LongStorage`` etc. (used only as element-type
    markers). Any other global raises :class:`CheckpointError` naming it, before anything runs.
    Persistent ids are accepted only when a ``persistent_load`` callback is given.
    """

    def __init__(self, file: IO[bytes], persistent_load: Callable[[Any], Any] | None = None) -> None:
        super().__init__(file)
        self._persistent = persistent_load

    def find_class(self, module: str, name: str) -> Any:
        """Returns the stand-in for an allowed global; refuses any other."""
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise CheckpointError(
            f"refusing to load global '{module}.{name}': a torch weights file needs only tensors, "
            "storages and OrderedDict, so this file was not written by torch.save or was tampered with"
        )

    def persistent_load(self, pid: Any) -> Any:
        """Hands persistent ids (storages) to the callback, or refuses them outside the object pickle."""
        if self._persistent is None:
            raise CheckpointError(f"unexpected persistent id {pid!r} in a checkpoint header")
        return self._persistent(pid)


def _load_one(f: IO[bytes], persistent_load: Callable[[Any], Any] | None = None) -> Any:
    try:
        return RestrictedUnpickler(f, persistent_load).load()
    except CheckpointError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise CheckpointError(f"corrupt checkpoint: {type(exc).__name__}: {exc}") from exc


def read_legacy_checkpoint(source: str | os.PathLike[str] | bytes | IO[bytes]) -> Any:
    """Reads a legacy torch checkpoint and returns its object with tensors as numpy arrays.

    Args:
        source: A path, the file's bytes, or a binary file object positioned at the start.

    Returns:
        The saved object (for a state dict: an ``OrderedDict`` of name -> ``np.ndarray``), with
        every tensor a C-contiguous numpy array of the stored dtype (bfloat16 widened to float32).

    Raises:
        CheckpointError: For a zip-format or corrupt file, a big-endian mismatch that cannot be
            read, or a pickle naming any global outside the allowed few.
    """
    if isinstance(source, (bytes, bytearray)):
        return _read(io.BytesIO(source))
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            return _read(f)
    return _read(source)


def _read(f: IO[bytes]) -> Any:
    head = f.read(4)
    f.seek(-len(head), io.SEEK_CUR)
    if head.startswith(b"PK\x03\x04"):
        raise CheckpointError(
            "this is a zip-format torch checkpoint (torch >= 1.6 default); only the legacy format is supported"
        )
    magic = _load_one(f)
    if magic != MAGIC_NUMBER:
        raise CheckpointError("not a legacy torch checkpoint (wrong magic number)")
    version = _load_one(f)
    if version != PROTOCOL_VERSION:
        raise CheckpointError(f"unsupported legacy checkpoint protocol version {version!r}")
    sys_info = _load_one(f)
    little_endian = bool(sys_info.get("little_endian", True)) if isinstance(sys_info, dict) else True
    order = "<" if little_endian else ">"

    storages: dict[str, _StorageRef] = {}

    def persistent_load(pid: Any) -> _StorageRef:
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage" and len(pid) == 6):
            raise CheckpointError(f"unsupported persistent id in checkpoint: {pid!r:.80}")
        _, storage_type, key, _location, numel, view_metadata = pid
        if not isinstance(storage_type, _StorageType):
            raise CheckpointError(f"unsupported storage type {storage_type!r:.80}")
        key = str(key)
        root = storages.get(key)
        if root is None:
            root = storages[key] = _StorageRef(key, storage_type, int(numel))
        if view_metadata is not None:
            view_key, offset, size = view_metadata
            return _StorageRef(str(view_key), storage_type, int(size), view=(key, int(offset), int(size)))
        return root

    obj = _load_one(f, persistent_load)
    keys = _load_one(f)
    if not isinstance(keys, list) or set(map(str, keys)) != set(storages):
        raise CheckpointError("the storage key list does not match the storages the checkpoint uses")
    for key in keys:
        ref = storages[str(key)]
        count_bytes = f.read(8)
        if len(count_bytes) != 8:
            raise CheckpointError(f"checkpoint ends before storage {key}")
        (count,) = struct.unpack(order + "q", count_bytes)
        if count != ref.numel:
            raise CheckpointError(f"storage {key}: {count} elements on disk, {ref.numel} expected")
        dtype = np.dtype(order + ref.storage_type.dtype)
        raw = f.read(count * dtype.itemsize)
        if len(raw) != count * dtype.itemsize:
            raise CheckpointError(f"checkpoint ends inside storage {key}")
        data = np.frombuffer(raw, dtype=dtype)
        if ref.storage_type.name == "BFloat16Storage":
            data = (data.astype(np.uint32) << 16).view(np.float32)
        ref.data = data.astype(data.dtype.newbyteorder("="), copy=False)
    return _materialise(obj, storages)


def _tensor_array(t: _TensorRef, storages: dict[str, _StorageRef]) -> np.ndarray:
    ref = t.storage
    base_offset = 0
    if ref.view is not None:
        root_key, base_offset, _ = ref.view
        ref = storages[root_key]
    data = ref.data
    assert data is not None
    offset = base_offset + t.offset
    if any(s == 0 for s in t.size):
        return np.zeros(t.size, dtype=data.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(t.size, t.stride, strict=True))
    if offset < 0 or last >= data.size:
        raise CheckpointError(f"a tensor of size {t.size} reaches outside its storage of {data.size} elements")
    view = np.lib.stride_tricks.as_strided(
        data[offset:], shape=t.size, strides=tuple(s * data.itemsize for s in t.stride), writeable=False
    )
    return np.array(view, order="C", copy=True)  # not ascontiguousarray: it turns 0-d into 1-d


def _materialise(obj: Any, storages: dict[str, _StorageRef]) -> Any:
    if isinstance(obj, _TensorRef):
        return _tensor_array(obj, storages)
    if isinstance(obj, collections.OrderedDict):
        return collections.OrderedDict((k, _materialise(v, storages)) for k, v in obj.items())
    if isinstance(obj, dict):
        return {k: _materialise(v, storages) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_materialise(v, storages) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_materialise(v, storages) for v in obj)
    return obj


def load_state_dict(source: str | os.PathLike[str] | bytes | IO[bytes]) -> collections.OrderedDict[str, np.ndarray]:
    """Reads a legacy checkpoint holding a state dict: an ``OrderedDict`` of parameter name -> array.

    Accepts a bare state dict or one under a ``"state_dict"`` key (a common training wrapper).

    Raises:
        CheckpointError: As :func:`read_legacy_checkpoint`, or when the object is not a state dict.
    """
    obj = read_legacy_checkpoint(source)
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, np.ndarray) for v in obj.values()):
        raise CheckpointError(f"the checkpoint holds a {type(obj).__name__}, not a state dict of tensors")
    return collections.OrderedDict((str(k), v) for k, v in obj.items())


def sha256_of(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """The hex SHA-256 of a file, read in chunks."""
    import hashlib

    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
