"""Why a save of boxes or attributes was refused: the errors every annotate and review action raises."""

from __future__ import annotations

from datetime import datetime


class AnnotationError(ValueError):
    """A save that cannot be done; the message says why and what to do. Nothing was changed."""


class StaleRevisionError(AnnotationError):
    """The image was saved by someone else after this copy was loaded.

    Attributes:
        current_revision: The revision now in the database.
        saved_by: Who made that revision.
        saved_at: When (UTC).
    """

    def __init__(self, image_name: str, expected: int, current: int, saved_by: str | None, saved_at: datetime | None):
        self.current_revision = current
        self.saved_by = saved_by
        self.saved_at = saved_at
        when = f" at {saved_at:%H:%M:%S} UTC" if saved_at else ""
        who = saved_by or "someone else"
        super().__init__(
            f"Not saved: {image_name!r} was saved by {who}{when} (revision {current}) after you opened it "
            f"(revision {expected}). Your changes were not written; the page now shows the saved version — "
            "redo your changes on it if they are still needed."
        )
