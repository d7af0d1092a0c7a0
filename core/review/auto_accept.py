"""Auto-accept: images whose every shown prediction clears its class's threshold, with an audit sample."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from core.annotate.errors import AnnotationError
from core.review.decisions import accept, record_decision
from core.review.errors import ReviewError
from core.review.item import load_review_item
from core.review.queue import DEFAULT_THRESHOLD, review_queue

DEFAULT_AUDIT_FRACTION = 0.05
AUTO_ACCEPT_USER = "auto-accept"


@dataclass
class AutoAcceptResult:
    """What an auto-accept run did.

    Attributes:
        refused: Images whose save was refused (e.g. a box already stored under a prediction of
            another label): nothing of them was written, they stay in the queue for people.
        problems: Why, one line per refused image.
    """

    accepted: int = 0
    audit: int = 0
    left: int = 0
    refused: int = 0
    problems: list[str] = field(default_factory=list)


def _in_audit(image_id: int | str, seed: int, fraction: float) -> bool:
    # A hash, not random(): the same image (or image:tag) lands in the same sample on every run.
    digest = hashlib.sha256(f"{seed}:{image_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def auto_accept(
    session: Session,
    project_id: int,
    model_version_id: int,
    thresholds: Mapping[str, float],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    audit_fraction: float = DEFAULT_AUDIT_FRACTION,
    seed: int = 0,
) -> AutoAcceptResult:
    """Accepts, without review, images whose every shown prediction clears its class's threshold.

    Args:
        session: Open session; the caller commits.
        project_id: The project.
        model_version_id: The model version.
        thresholds: Label name -> score at or above which its predictions are accepted;
            a class not listed is never auto-accepted.
        threshold: The review threshold (predictions below it are not shown, so not saved).
        audit_fraction: Share of the eligible images left for people (``audit`` decision).
        seed: Audit sample seed.

    An image whose save is refused (:class:`core.annotate.errors.AnnotationError`) is skipped and
    counted in ``refused``; the others are still accepted.
    """
    if not 0.0 <= audit_fraction <= 1.0:
        raise ReviewError("The audit share must be between 0 and 1.")
    result = AutoAcceptResult()
    for q in review_queue(session, project_id, model_version_id, threshold=threshold):
        if q.audit:
            continue
        item = load_review_item(session, q.image_id, model_version_id, threshold)
        if not item.predictions or any(p.score < thresholds.get(p.label, 2.0) for p in item.predictions):
            result.left += 1
            continue
        if _in_audit(q.image_id, seed, audit_fraction):
            record_decision(session, item, "audit", AUTO_ACCEPT_USER)
            result.audit += 1
            continue
        try:
            # A savepoint per image: a save the rules refuse rolls back that image alone, and the
            # run goes on with the next one instead of losing every image accepted before it.
            with session.begin_nested():
                accept(session, item, AUTO_ACCEPT_USER, auto=True)
        except AnnotationError as exc:
            result.refused += 1
            result.problems.append(f"{item.state.name}: {exc}")
            continue
        result.accepted += 1
    session.flush()
    return result
