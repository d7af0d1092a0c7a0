"""The TensorFlow Object Detection API label map (``label_map.pbtxt``).

Written with ids 1..N in the project's label order (0 is the API's background class)
and only ``id`` and a quoted ``name`` per item, the form every OD API config accepts::

    item {
      id: 1
      name: "Jackets"
    }

The reader accepts what other pipelines write: single or double quotes, ``display_name``
(ignored), items and fields in any order, comments.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path


class LabelMapError(ValueError):
    """A label map that cannot be read (the message says why)."""


def _quote(name: str) -> str:
    # Protobuf text format string escaping: backslash and the quote itself.
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_label_map(names: Sequence[str]) -> str:
    """The label map text for ``names``, ids 1..N in the given order."""
    return "".join(f"item {{\n  id: {i}\n  name: {_quote(n)}\n}}\n" for i, n in enumerate(names, start=1))


def write_label_map(names: Sequence[str], path: Path) -> Path:
    """Writes ``label_map.pbtxt`` for ``names`` to ``path``; returns the path."""
    path.write_text(format_label_map(names), encoding="utf-8")
    return path


_ITEM = re.compile(r"item\s*\{(.*?)\}", re.S)
_ID = re.compile(r"(?<![\w])id\s*:\s*(-?\d+)")
_NAME = re.compile(r"(?<![\w])name\s*:\s*(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')")


def _unquote(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token[1:-1])


def parse_label_map(text: str) -> dict[int, str]:
    """Reads a label map: id -> name.

    Raises:
        LabelMapError: When an item lacks an id or a name, or ids repeat.
    """
    text = re.sub(r"#[^\n]*", "", text)
    out: dict[int, str] = {}
    for n, body in enumerate(_ITEM.findall(text), start=1):
        m_id, m_name = _ID.search(body), _NAME.search(body)
        if not m_id or not m_name:
            raise LabelMapError(f"label map item {n} lacks an id or a name")
        ident = int(m_id.group(1))
        if ident in out:
            raise LabelMapError(f"label map id {ident} appears twice")
        out[ident] = _unquote(m_name.group(1))
    return out
