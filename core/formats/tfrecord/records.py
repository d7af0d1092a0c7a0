"""TFRecord files: framing and writing records fast, reading them back, and the OD API's shard names."""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Iterator

import tensorflow as tf

# A TFRecord file is a sequence of records: uint64 length (little endian), masked CRC32C of
# those 8 bytes, the data, masked CRC32C of the data (tensorflow/core/lib/io/record_writer.cc).
# tf.io.TFRecordWriter needs each record as one bytes object (one more copy of every image)
# and cost 1.7x a plain write of the same bytes here (benchmarks/export.py); RecordWriter
# frames the parts itself, checksums them with google-crc32c (Google's hardware-accelerated
# CRC32C, the one the Cloud Storage clients use) and hands them to the kernel in one
# os.writev per record. Its files are byte for byte what tf.io.TFRecordWriter writes
# (tests/core/formats/test_tfrecord.py). Where google-crc32c has only its pure-Python
# fallback, or os.writev is missing (Windows), open_record_writer uses TensorFlow's writer.

_U64 = struct.Struct("<Q").pack
_U32 = struct.Struct("<I").pack


def _masked(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


@functools.cache
def fast_framing_available() -> bool:
    """Whether :class:`RecordWriter` can run at native speed here."""
    try:
        import google_crc32c
    except ImportError:
        return False
    return google_crc32c.implementation == "c" and hasattr(os, "writev")


class RecordWriter:
    """Writes an uncompressed TFRecord file, each record given as parts that are written as they are."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Creates (or truncates) the file."""
        import google_crc32c

        self._value = google_crc32c.value
        self._extend = google_crc32c.extend
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o666)

    def write(self, *parts: bytes) -> None:
        """Appends one record whose data is the concatenation of ``parts``."""
        if self._fd is None:
            raise ValueError("write to a closed RecordWriter")
        extend = self._extend
        crc = 0
        size = 0
        for part in parts:
            crc = extend(crc, part)
            size += len(part)
        length = _U64(size)
        buffers = [length, _U32(_masked(self._value(length))), *parts, _U32(_masked(crc))]
        total = size + 16
        written = os.writev(self._fd, buffers)
        if written != total:  # a short write (signal, quota): write the rest plainly
            rest = memoryview(b"".join(buffers))[written:]
            while rest:
                rest = rest[os.write(self._fd, rest) :]

    def flush(self) -> None:
        """Nothing is buffered: every record is in the kernel once write returns."""

    def close(self) -> None:
        """Closes the file."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _TFWriter:
    """tf.io.TFRecordWriter behind :class:`RecordWriter`'s interface (the fallback)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._writer = tf.io.TFRecordWriter(os.fspath(path))

    def write(self, *parts: bytes) -> None:
        self._writer.write(parts[0] if len(parts) == 1 else b"".join(parts))

    def close(self) -> None:
        self._writer.close()


def open_record_writer(path: str | os.PathLike[str]) -> RecordWriter | _TFWriter:
    """A TFRecord writer for ``path``: :class:`RecordWriter`, or TensorFlow's where that is not fast here."""
    return RecordWriter(path) if fast_framing_available() else _TFWriter(path)


def shard_name(split: str, index: int, count: int) -> str:
    """``train.record-00000-of-00004``: the OD API's sharded file naming."""
    return f"{split}.record-{index:05d}-of-{count:05d}"


def iter_records(path: str) -> Iterator[bytes]:
    """Yields the serialized records of a TFRecord file (uncompressed)."""
    for raw in tf.data.TFRecordDataset(path):
        yield raw.numpy()
