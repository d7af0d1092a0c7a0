"""Why a review action was refused; nothing was changed."""

from __future__ import annotations


class ReviewError(ValueError):
    """A review action that cannot be done; nothing was changed."""


class NothingShownError(ReviewError):
    """Accept or save of an item that had nothing on the canvas and still has nothing.

    Saving it would mark the image "no garments", and it is ground truth from then on.
    The least-confident-first queue puts exactly such items first (every prediction under
    the threshold, hidden), so one key press would teach the next model that the garment
    is background. It takes the explicit "no garments" action instead.
    """
