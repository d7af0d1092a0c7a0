"""Which stored box each box coming back from the canvas continues, and whether anything changed."""

from __future__ import annotations

from collections.abc import Sequence

from core.annotate.state import DraftBox, StoredBox
from core.boxes import Box


def _close(a: Box, b: Box, tolerance: float) -> bool:
    return (
        abs(a.x_min - b.x_min) <= tolerance
        and abs(a.y_min - b.y_min) <= tolerance
        and abs(a.x_max - b.x_max) <= tolerance
        and abs(a.y_max - b.y_max) <= tolerance
    )


def match_boxes(stored: Sequence[StoredBox], edited: Sequence[tuple[str, Box]], tolerance: float) -> list[DraftBox]:
    """Tells which stored box each box coming back from the canvas continues.

    The canvas returns plain labelled rectangles without ids, so identity is recovered
    here, in three passes that each only consider boxes not yet matched:

    1. unchanged: same label and every edge within ``tolerance`` (the canvas round-trips
       coordinates through its own float formatting, so exact equality is too strict);
       such a draft carries the *stored* coordinates, so an untouched box never drifts;
    2. moved or resized: the best-overlapping stored box (IoU > 0.3);
    3. anything else left over is new, and stored boxes no draft continues are deleted.

    Args:
        stored: The boxes as loaded.
        edited: (label, box) pairs in original pixels, in canvas order.
        tolerance: Largest per-edge difference, in original pixels, that still counts as
            unchanged (about 0.05 canvas pixels, converted).

    Returns:
        One draft per edited box, in the same order.
    """
    drafts: list[DraftBox | None] = [None] * len(edited)
    free = {s.id: s for s in stored}
    for i, (label, box) in enumerate(edited):
        for sid, s in free.items():
            if s.label == label and _close(s.box, box, tolerance):
                drafts[i] = DraftBox(label, s.box, sid)
                del free[sid]
                break
    pairs = sorted(
        ((box.iou(s.box), i, s.id) for i, (_, box) in enumerate(edited) if drafts[i] is None for s in free.values()),
        reverse=True,
    )
    for score, i, sid in pairs:
        if score <= 0.3:
            break
        if drafts[i] is None and sid in free:
            drafts[i] = DraftBox(edited[i][0], edited[i][1], sid)
            del free[sid]
    return [d if d is not None else DraftBox(label, box) for d, (label, box) in zip(drafts, edited, strict=True)]


def has_changes(stored: Sequence[StoredBox], drafts: Sequence[DraftBox]) -> bool:
    """True when saving ``drafts`` would change the stored boxes."""
    by_id = {s.id: s for s in stored}
    if len(drafts) != len(stored):
        return True
    for d in drafts:
        s = by_id.get(d.box_id) if d.box_id is not None else None
        if s is None or s.label != d.label or s.box != d.box:
            return True
    return False
