"""Finding the label or image a person means by the name they typed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar


class Named(Protocol):
    @property
    def name(self) -> str: ...


N = TypeVar("N", bound=Named)


def find_named(items: Iterable[N], text: str, *, partial: bool = False) -> N | None:
    """The item whose ``name`` is ``text`` (stripped): exact, then in any letter case, then, with
    ``partial``, the first name containing it in any letter case. None when nothing matches."""
    text = text.strip()
    items = list(items)
    for item in items:
        if item.name == text:
            return item
    folded = text.casefold()
    for item in items:
        if item.name.casefold() == folded:
            return item
    if partial:
        for item in items:
            if folded in item.name.casefold():
                return item
    return None
