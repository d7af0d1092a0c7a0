"""Reviewers' decisions on checked listings, the review queue, counts and the CSV export.

"Model wrong" makes the listing's claims the ground truth of its photos' tags (stored in
``Image.attributes``, the schema grows the value where needed), so the next tags model learns
from the correction. Decisions are history: a new decision on a listing is a new row.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.catalogue.vocabulary import normalise_value
from core.project.projects import record_activity
from db.models import CatalogueDecision, CatalogueItem, CatalogueItemImage, CatalogueResult, Project, utcnow
from db.models import Image as ImageRow

DECISIONS: dict[str, str] = {
    "description_wrong": "Description wrong",
    "photo_wrong": "Photo wrong",
    "model_wrong": "Model wrong",
    "fine": "Fine",
}


class DecisionError(ValueError):
    """A decision that cannot be recorded (the message says why)."""


def latest_decisions(session: Session, project_id: int) -> dict[int, CatalogueDecision]:
    """item id -> its latest decision."""
    latest = (
        select(CatalogueDecision.item_id, func.max(CatalogueDecision.id).label("last"))
        .join(CatalogueItem, CatalogueItem.id == CatalogueDecision.item_id)
        .where(CatalogueItem.project_id == project_id)
        .group_by(CatalogueDecision.item_id)
        .subquery()
    )
    rows = session.scalars(select(CatalogueDecision).join(latest, CatalogueDecision.id == latest.c.last))
    return {d.item_id: d for d in rows}


def decision_counts(session: Session, project_id: int) -> dict[str, int]:
    """How many listings have each decision as their latest one."""
    counts = Counter(d.decision for d in latest_decisions(session, project_id).values())
    return {k: counts.get(k, 0) for k in DECISIONS}


def queue(
    session: Session,
    project_id: int,
    model_version_id: int,
    *,
    tag: str | None = None,
    min_score: float = 0.0,
    include_decided: bool = False,
) -> list[dict[str, Any]]:
    """Flagged listings, highest mismatch score first (ambiguous ones after the scored ones).

    Args:
        tag: Only listings with a contradicted claim of this tag (its reason names it).
        min_score: Only listings scoring at least this (ambiguous, unscored ones pass at 0).
        include_decided: Keep listings that already have a decision.
    """
    decided = latest_decisions(session, project_id)
    rows = session.execute(
        select(CatalogueItem, CatalogueResult)
        .join(CatalogueResult, CatalogueResult.item_id == CatalogueItem.id)
        .where(
            CatalogueItem.project_id == project_id,
            CatalogueResult.model_version_id == model_version_id,
            CatalogueResult.flagged.is_(True),
        )
        .order_by(CatalogueResult.mismatch_score.desc().nulls_last(), CatalogueItem.sku)
    )
    out = []
    for item, result in rows:
        score = result.mismatch_score
        if min_score > 0 and (score or 0.0) < min_score:
            continue
        if not include_decided and item.id in decided:
            continue
        claims = result.details.get("claims", [])
        if tag and not any(c["tag"] == tag and c["compared"] and (c["probability"] or 0) < 0.5 for c in claims):
            continue
        out.append(
            {
                "item_id": item.id,
                "sku": item.sku,
                "title": item.title,
                "description": item.description,
                "score": score,
                "details": result.details,
                "decision": decided[item.id].decision if item.id in decided else None,
            }
        )
    return out


def decide(
    session: Session, item_id: int, decision: str, model_version_id: int | None = None, who: str | None = None
) -> CatalogueDecision:
    """Records a decision; "model wrong" also stores the listing's claims as its photos' tags.

    Raises:
        DecisionError: Unknown decision or listing.
    """
    if decision not in DECISIONS:
        raise DecisionError(f"Unknown decision {decision!r}; one of {', '.join(DECISIONS)}.")
    item = session.get(CatalogueItem, item_id)
    if item is None:
        raise DecisionError(f"No listing with id {item_id}.")
    result = None
    if model_version_id is not None:
        result = session.scalar(
            select(CatalogueResult).where(
                CatalogueResult.item_id == item_id, CatalogueResult.model_version_id == model_version_id
            )
        )
    details: dict[str, Any] = {
        "mismatch_score": result.mismatch_score if result else None,
        "reasons": result.details.get("reasons", []) if result else [],
    }
    if decision == "model_wrong":
        if result is None:
            raise DecisionError("'Model wrong' needs the listing's check against a model version.")
        details.update(_claims_to_ground_truth(session, item, result.details, who))
    row = CatalogueDecision(
        item_id=item_id, model_version_id=model_version_id, decision=decision, details=details, who=who
    )
    session.add(row)
    session.flush()
    record_activity(session, item.project_id, "catalogue", f"{item.sku}: {DECISIONS[decision].lower()}", who)
    return row


def _claims_to_ground_truth(
    session: Session, item: CatalogueItem, details: dict[str, Any], who: str | None
) -> dict[str, Any]:
    """Stores each compared claim with one value as the tag of every photo of the listing."""
    project = session.get(Project, item.project_id)
    assert project is not None
    schema = {k: list(v) for k, v in (project.attribute_schema or {}).items()}
    stored: dict[str, str] = {}
    skipped: list[str] = []
    for claim in details.get("claims", []):
        if not claim.get("compared"):
            continue
        if len(claim["values"]) != 1:
            skipped.append(f'"{claim["phrase"]}" means {" or ".join(claim["values"])}: set {claim["tag"]} on Annotate')
            continue
        value = claim["values"][0]
        known = schema.setdefault(claim["tag"], [])
        match = next((v for v in known if normalise_value(v) == normalise_value(value)), None)
        if match is None:
            known.append(value)
            match = value
        stored[claim["tag"]] = match
    image_ids = [
        ci.image_id for ci in session.scalars(select(CatalogueItemImage).where(CatalogueItemImage.item_id == item.id))
    ]
    for image in session.scalars(select(ImageRow).where(ImageRow.id.in_(image_ids))):
        image.attributes = {**(image.attributes or {}), **stored}
        image.updated_by = who
        image.updated_at = utcnow()
    if schema != project.attribute_schema:
        project.attribute_schema = schema
    return {"ground_truth": stored, "images": image_ids, "skipped": skipped}


EXPORT_COLUMNS = (
    "sku",
    "title",
    "description",
    "mismatch_score",
    "flagged",
    "reasons",
    "decision",
    "who",
    "decided_at",
)


def export_csv(session: Session, project_id: int, model_version_id: int) -> str:
    """Flagged and decided listings as CSV (for sellers: what their listing says and why it was flagged)."""
    decided = latest_decisions(session, project_id)
    rows = session.execute(
        select(CatalogueItem, CatalogueResult)
        .outerjoin(
            CatalogueResult,
            (CatalogueResult.item_id == CatalogueItem.id) & (CatalogueResult.model_version_id == model_version_id),
        )
        .where(CatalogueItem.project_id == project_id)
        .order_by(CatalogueResult.mismatch_score.desc().nulls_last(), CatalogueItem.sku)
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for item, result in rows:
        decision = decided.get(item.id)
        if not (result is not None and result.flagged) and decision is None:
            continue
        writer.writerow(
            [
                item.sku,
                item.title,
                item.description,
                "" if result is None or result.mismatch_score is None else f"{result.mismatch_score:.4f}",
                bool(result is not None and result.flagged),
                " | ".join(result.details.get("reasons", [])) if result is not None else "",
                decision.decision if decision else "",
                (decision.who or "") if decision else "",
                decision.created_at.isoformat(timespec="seconds") if decision else "",
            ]
        )
    return out.getvalue()
