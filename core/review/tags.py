"""Reviewing predicted image tags: the queue, accept / change / skip, and auto-accept with an audit sample.

A tags model version (``ModelVersion.kind == tags``) leaves one :class:`db.models.TagPrediction`
per (image, tag): the top value and its CALIBRATED confidence. A suggestion is open while the
image stores no value for that tag (a stored tag is ground truth already) and no decision was
taken on it for that version. Deciding writes a :class:`db.models.ReviewDecision` of the version
(no prediction id: that column points at box predictions) with details
``{tag, suggested, chosen, confidence}``:

- ``accepted``: the suggestion stored unchanged; ``changed``: the reviewer stored another value;
- ``skipped``: nothing stored (the reviewer could not tell), the suggestion leaves the queue;
- ``auto_accepted``: stored by auto-accept; ``audit``: auto-accept would have taken it but left it
  for people, so that the share of audited suggestions accepted unchanged measures the thresholds'
  real error rate (as for boxes, :mod:`core.review.auto_accept`).

Accepting stores the tag in ``Image.attributes`` (ground truth for the next training and every
export) and bumps the image's revision, so an Annotate tab opened before reloads instead of
saving its older attributes over it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.annotate.attributes import stored_attributes
from core.review.auto_accept import AUTO_ACCEPT_USER, DEFAULT_AUDIT_FRACTION, _in_audit
from core.review.errors import ReviewError
from db.models import Image, ModelKind, ModelVersion, Project, ReviewDecision, TagPrediction

# Decisions that take a suggestion out of the queue (an audit row does not: people still decide it).
CLOSING = ("accepted", "changed", "skipped", "auto_accepted")


@dataclass(frozen=True)
class TagSuggestion:
    """One open suggestion: the model's value for one tag of one image, with its calibrated confidence."""

    image_id: int
    image_name: str
    tag: str
    value: str
    confidence: float
    probabilities: dict[str, float]
    audit: bool = False


def tags_versions(session: Session, project_id: int) -> list[ModelVersion]:
    """The project's tags model versions, newest first."""
    return list(
        session.scalars(
            select(ModelVersion)
            .where(ModelVersion.project_id == project_id, ModelVersion.kind == ModelKind.TAGS)
            .order_by(ModelVersion.id.desc())
        )
    )


def latest_tags_version_id(session: Session, project_id: int) -> int | None:
    """The newest tags version of the project that has predictions, or None."""
    return session.scalar(
        select(ModelVersion.id)
        .where(
            ModelVersion.project_id == project_id,
            ModelVersion.kind == ModelKind.TAGS,
            select(TagPrediction.id).where(TagPrediction.model_version_id == ModelVersion.id).exists(),
        )
        .order_by(ModelVersion.id.desc())
        .limit(1)
    )


def has_tag_predictions(session: Session, model_version_id: int) -> bool:
    """Whether the version has predicted any tag yet."""
    return (
        session.scalar(select(TagPrediction.id).where(TagPrediction.model_version_id == model_version_id).limit(1))
        is not None
    )


def _tags_version(session: Session, project_id: int, model_version_id: int) -> ModelVersion:
    version = session.get(ModelVersion, model_version_id)
    if version is None or version.project_id != project_id:
        raise ReviewError(f"No model version #{model_version_id} in this project.")
    if version.kind != ModelKind.TAGS:
        raise ReviewError(f"{version.name} is a {version.kind.value} model, not a tags model.")
    return version


def _decided(
    session: Session, model_version_id: int, image_ids: Sequence[int] = ()
) -> tuple[set[tuple[int, str]], set[tuple[int, str]]]:
    """(image, tag) pairs with a closing decision, and those in the audit sample, for the version (and images)."""
    closed: set[tuple[int, str]] = set()
    audit: set[tuple[int, str]] = set()
    stmt = select(ReviewDecision.image_id, ReviewDecision.decision, ReviewDecision.details).where(
        ReviewDecision.model_version_id == model_version_id
    )
    if image_ids:
        stmt = stmt.where(ReviewDecision.image_id.in_(list(image_ids)))
    for image_id, decision, details in session.execute(stmt):
        tag = (details or {}).get("tag")
        if tag is None:
            continue
        (audit if decision == "audit" else closed).add((image_id, tag))
    return closed, audit


def tags_queue(
    session: Session,
    project_id: int,
    model_version_id: int,
    *,
    tags: Sequence[str] = (),
    values: Sequence[str] = (),
    max_confidence: float = 1.0,
    image_ids: Sequence[int] = (),
) -> list[TagSuggestion]:
    """Open suggestions of a tags version, audit sample first, then lowest calibrated confidence first.

    Args:
        session: Open session.
        project_id: The project.
        model_version_id: A tags model version of the project.
        tags: Only these tags (empty: all).
        values: Only suggestions of these values (empty: all).
        max_confidence: Only suggestions at or below this confidence.
        image_ids: Only these images (empty: all).

    Raises:
        ReviewError: The version is not a tags version of the project.
    """
    _tags_version(session, project_id, model_version_id)
    closed, audit = _decided(session, model_version_id, image_ids)
    stmt = (
        select(
            TagPrediction.image_id,
            Image.original_name,
            Image.attributes,
            TagPrediction.tag,
            TagPrediction.value,
            TagPrediction.confidence,
            TagPrediction.probabilities,
        )
        .join(Image, Image.id == TagPrediction.image_id)
        .where(
            TagPrediction.model_version_id == model_version_id,
            Image.project_id == project_id,
            TagPrediction.confidence <= max_confidence,
        )
    )
    if tags:
        stmt = stmt.where(TagPrediction.tag.in_(list(tags)))
    if values:
        stmt = stmt.where(TagPrediction.value.in_(list(values)))
    if image_ids:
        stmt = stmt.where(TagPrediction.image_id.in_(list(image_ids)))
    out = []
    for image_id, name, attributes, tag, value, confidence, probs in session.execute(stmt):
        if (image_id, tag) in closed or (attributes or {}).get(tag) not in (None, ""):
            continue
        out.append(
            TagSuggestion(
                image_id,
                name,
                tag,
                value,
                float(confidence),
                {str(k): float(v) for k, v in (probs or {}).items()},
                (image_id, tag) in audit,
            )
        )
    return sorted(out, key=lambda s: (not s.audit, s.confidence, s.image_id, s.tag))


def suggestion(session: Session, model_version_id: int, image_id: int, tag: str) -> TagSuggestion:
    """The version's suggestion for one image's tag (open or not).

    Raises:
        ReviewError: The version made no prediction of that tag for that image.
    """
    row = session.execute(
        select(TagPrediction, Image.original_name)
        .join(Image, Image.id == TagPrediction.image_id)
        .where(
            TagPrediction.model_version_id == model_version_id,
            TagPrediction.image_id == image_id,
            TagPrediction.tag == tag,
        )
    ).first()
    if row is None:
        raise ReviewError(f"Model version #{model_version_id} has no {tag!r} prediction for image #{image_id}.")
    p, name = row
    return TagSuggestion(
        image_id,
        name,
        tag,
        p.value,
        float(p.confidence),
        {str(k): float(v) for k, v in (p.probabilities or {}).items()},
    )


def _record(
    session: Session, model_version_id: int, s: TagSuggestion, decision: str, chosen: str | None, who: str
) -> None:
    session.add(
        ReviewDecision(
            image_id=s.image_id,
            model_version_id=model_version_id,
            decision=decision,
            details={"tag": s.tag, "suggested": s.value, "chosen": chosen, "confidence": round(s.confidence, 4)},
            who=who,
        )
    )


def _store_tag(session: Session, s: TagSuggestion, value: str, who: str) -> None:
    image = session.get(Image, s.image_id)
    assert image is not None
    schema = session.scalar(select(Project.attribute_schema).where(Project.id == image.project_id)) or {}
    if s.tag not in schema:
        raise ReviewError(f"The project has no tag {s.tag!r} any more; it cannot be stored.")
    if value not in schema[s.tag]:
        raise ReviewError(f"{value!r} is not a value of {s.tag!r}; choose one of: {', '.join(schema[s.tag])}.")
    stored = dict(image.attributes or {})
    if stored.get(s.tag) not in (None, ""):
        raise ReviewError(
            f"{image.original_name}: {s.tag} was set to {stored[s.tag]!r} meanwhile (by {image.updated_by or 'someone'}); "
            "it is left as it is."
        )
    image.attributes = {**stored, s.tag: value}
    image.revision = (image.revision or 0) + 1
    image.updated_by = who


def decide_tag(
    session: Session,
    project_id: int,
    model_version_id: int,
    image_id: int,
    tag: str,
    decision: str,
    who: str,
    chosen: str | None = None,
) -> str:
    """Takes a reviewer's decision on one suggestion; returns a one-line summary.

    Args:
        session: Open session; the caller commits.
        project_id: The project.
        model_version_id: The tags version whose suggestion it is.
        image_id: The image.
        tag: The tag.
        decision: ``accept`` (store the suggested value), ``change`` (store ``chosen``) or ``skip``.
        who: The reviewer.
        chosen: The value for ``change``; a change to the suggested value counts as accepted.

    Raises:
        ReviewError: Unknown decision, a value the schema does not allow, a tag someone stored
            meanwhile, or a suggestion already decided.
    """
    _tags_version(session, project_id, model_version_id)
    s = suggestion(session, model_version_id, image_id, tag)
    closed, _audit = _decided(session, model_version_id, [image_id])
    if (image_id, tag) in closed:
        raise ReviewError(f"{s.image_name}: the {tag} suggestion was already decided.")
    if decision == "skip":
        _record(session, model_version_id, s, "skipped", None, who)
        session.flush()
        return f"{s.image_name}: {tag} skipped (nothing stored)."
    if decision == "accept" or (decision == "change" and chosen == s.value):
        _store_tag(session, s, s.value, who)
        _record(session, model_version_id, s, "accepted", s.value, who)
        session.flush()
        return f"{s.image_name}: {tag} = {s.value} accepted."
    if decision == "change":
        if not chosen:
            raise ReviewError("Choose the value to store instead.")
        _store_tag(session, s, chosen, who)
        _record(session, model_version_id, s, "changed", chosen, who)
        session.flush()
        return f"{s.image_name}: {tag} = {chosen} (the model said {s.value})."
    raise ReviewError(f"Unknown decision {decision!r}; use accept, change or skip.")


def image_suggestions(session: Session, project_id: int, image_id: int) -> tuple[int | None, dict[str, TagSuggestion]]:
    """The newest tags version with predictions and its open suggestions for one image, by tag (Annotate's)."""
    version_id = latest_tags_version_id(session, project_id)
    if version_id is None:
        return None, {}
    return version_id, {s.tag: s for s in tags_queue(session, project_id, version_id, image_ids=[image_id])}


def shown_attributes(
    schema: Mapping[str, Sequence[str]], stored: Mapping[str, Any] | None, suggested: Mapping[str, TagSuggestion]
) -> dict[str, str]:
    """What Annotate's pickers start on: the stored tags, with the model's suggestions pre-selected.

    An untouched suggestion is therefore no unsaved change (moving on must not store it unseen);
    Save or T stores what is shown.
    """
    shown = {t: x.value for t, x in suggested.items() if x.value in schema.get(t, [])}
    return {**stored_attributes(schema, stored), **shown}


def record_saved_suggestions(
    session: Session,
    model_version_id: int,
    suggestions: Mapping[str, TagSuggestion],
    saved: Mapping[str, Any],
    who: str,
) -> int:
    """Records what a save did with the suggestions it showed pre-selected: kept (``accepted``) or ``changed``.

    For a save that stored the attributes itself (Annotate's): each suggested tag it stored gets
    its decision; returns how many were recorded.
    """
    n = 0
    for tag, s in suggestions.items():
        chosen = saved.get(tag)
        if chosen in (None, ""):
            continue
        _record(session, model_version_id, s, "accepted" if chosen == s.value else "changed", str(chosen), who)
        n += 1
    session.flush()
    return n


@dataclass
class TagAutoAcceptResult:
    """What an auto-accept run over tag suggestions did."""

    accepted: int = 0
    audit: int = 0
    left: int = 0
    refused: int = 0
    problems: list[str] = field(default_factory=list)


def auto_accept_tags(
    session: Session,
    project_id: int,
    model_version_id: int,
    thresholds: Mapping[str, Mapping[str, float]],
    *,
    audit_fraction: float = DEFAULT_AUDIT_FRACTION,
    seed: int = 0,
) -> TagAutoAcceptResult:
    """Stores, without review, suggestions whose confidence clears their tag value's threshold.

    Args:
        session: Open session; the caller commits.
        project_id: The project.
        model_version_id: A tags version.
        thresholds: Tag -> value -> calibrated confidence at or above which that suggestion is
            accepted; a value not listed is never auto-accepted.
        audit_fraction: Share of the eligible suggestions left for people (an ``audit`` row), drawn
            by the same seeded hash as the boxes' audit sample: the same suggestion lands in it on
            every run.
        seed: Audit sample seed.
    """
    if not 0.0 <= audit_fraction <= 1.0:
        raise ReviewError("The audit share must be between 0 and 1.")
    result = TagAutoAcceptResult()
    for s in tags_queue(session, project_id, model_version_id):
        if s.audit:
            continue
        limit = thresholds.get(s.tag, {}).get(s.value)
        if limit is None or s.confidence < limit:
            result.left += 1
            continue
        if _in_audit(f"{s.image_id}:{s.tag}", seed, audit_fraction):
            _record(session, model_version_id, s, "audit", None, AUTO_ACCEPT_USER)
            result.audit += 1
            continue
        try:
            with session.begin_nested():
                _store_tag(session, s, s.value, AUTO_ACCEPT_USER)
                _record(session, model_version_id, s, "auto_accepted", s.value, AUTO_ACCEPT_USER)
        except ReviewError as exc:
            result.refused += 1
            result.problems.append(str(exc))
            continue
        result.accepted += 1
    session.flush()
    return result


def tag_decision_summary(session: Session, project_id: int) -> list[dict[str, Any]]:
    """Decisions per tags version and tag, with the share accepted unchanged (the work the model saved).

    Rows: version, tag, one count per decision, ``reviewed`` (suggestions people decided with a
    value: accepted + changed), ``accepted_share`` (accepted / reviewed), and ``audit_error``: the
    share of audited suggestions people did not accept unchanged (None before any is reviewed).
    """
    rows = session.execute(
        select(
            ModelVersion.id, ModelVersion.name, ReviewDecision.image_id, ReviewDecision.decision, ReviewDecision.details
        )
        .join(ModelVersion, ModelVersion.id == ReviewDecision.model_version_id)
        .where(ModelVersion.project_id == project_id, ModelVersion.kind == ModelKind.TAGS)
    ).all()
    table: dict[tuple[int, str], dict[str, Any]] = {}
    audited: set[tuple[int, int, str]] = set()
    for vid, _vname, image_id, decision, details in rows:
        if decision == "audit":
            audited.add((vid, image_id, (details or {}).get("tag", "?")))
    audit_outcomes: dict[tuple[int, str], list[bool]] = {}
    for vid, vname, image_id, decision, details in rows:
        tag = (details or {}).get("tag", "?")
        row = table.setdefault((vid, tag), {"version": vname, "version_id": vid, "tag": tag})
        row[decision] = row.get(decision, 0) + 1
        if (vid, image_id, tag) in audited and decision in ("accepted", "changed"):
            audit_outcomes.setdefault((vid, tag), []).append(decision == "accepted")
    out = []
    for key, row in table.items():
        reviewed = row.get("accepted", 0) + row.get("changed", 0)
        row["reviewed"] = reviewed
        row["accepted_share"] = round(row.get("accepted", 0) / reviewed, 3) if reviewed else None
        outcomes = audit_outcomes.get(key, [])
        row["audit_error"] = round(sum(not ok for ok in outcomes) / len(outcomes), 3) if outcomes else None
        out.append(row)
    return sorted(out, key=lambda r: (-r["version_id"], r["tag"]))
