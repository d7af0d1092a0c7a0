"""What reviews decided: decisions per version and class, the audit error rate, images reviewed since a model."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from db.models import Image, ImageStatus, Label, ModelKind, ModelVersion, Prediction, ReviewDecision


def decision_summary(session: Session, project_id: int) -> list[dict[str, Any]]:
    """Decisions per model version and predicted class, with the share accepted unchanged.

    Rows: version, class, one count per decision, ``reviewed`` (predictions people decided on)
    and ``accepted_share`` (accepted / reviewed). ``added`` rows count under the class the
    reviewer drew. The image-level reject row is not a prediction and is left out.
    """
    rows = session.execute(
        select(
            ModelVersion.id,
            ModelVersion.name,
            ReviewDecision.decision,
            ReviewDecision.details,
            Label.name,
            ReviewDecision.prediction_id,
        )
        .join(ModelVersion, ModelVersion.id == ReviewDecision.model_version_id)
        .outerjoin(Prediction, Prediction.id == ReviewDecision.prediction_id)
        .outerjoin(Label, Label.id == Prediction.label_id)
        .where(ModelVersion.project_id == project_id, ModelVersion.kind != ModelKind.TAGS)
    ).all()
    table: dict[tuple[int, str, str], dict[str, Any]] = {}
    for vid, vname, decision, details, label, pred_id in rows:
        if decision == "audit" or (decision == "rejected" and pred_id is None):
            continue
        cls = label or (details or {}).get("label") or "?"
        row = table.setdefault((vid, vname, cls), {"version": vname, "version_id": vid, "class": cls})
        row[decision] = row.get(decision, 0) + 1
    out = []
    for row in table.values():
        reviewed = sum(row.get(k, 0) for k in ("accepted", "moved", "relabelled", "deleted", "rejected"))
        row["reviewed"] = reviewed
        row["accepted_share"] = round(row.get("accepted", 0) / reviewed, 3) if reviewed else None
        out.append(row)
    return sorted(out, key=lambda r: (-r["version_id"], r["class"]))


def audit_error_rate(session: Session, model_version_id: int) -> tuple[int, float | None]:
    """Audited predictions reviewed by people and the share of them not accepted unchanged."""
    audited = select(ReviewDecision.image_id).where(
        ReviewDecision.model_version_id == model_version_id, ReviewDecision.decision == "audit"
    )
    rows = (
        session.execute(
            select(ReviewDecision.decision).where(
                ReviewDecision.model_version_id == model_version_id,
                ReviewDecision.image_id.in_(audited),
                ReviewDecision.prediction_id.is_not(None),
                ReviewDecision.decision.in_(("accepted", "moved", "relabelled", "deleted", "rejected")),
            )
        )
        .scalars()
        .all()
    )
    if not rows:
        return 0, None
    return len(rows), round(sum(d != "accepted" for d in rows) / len(rows), 3)


def reviewed_since(session: Session, project_id: int, since: Any) -> int:
    """Images people or auto-accept reviewed into ground truth after ``since`` (None: ever)."""
    cond = [
        ReviewDecision.decision.in_(("accepted", "moved", "relabelled", "added", "deleted", "auto_accepted")),
        # Box reviews only: a tag accepted on an image says nothing of its boxes.
        or_(
            ReviewDecision.model_version_id.is_(None),
            ReviewDecision.model_version_id.not_in(select(ModelVersion.id).where(ModelVersion.kind == ModelKind.TAGS)),
        ),
    ]
    if since is not None:
        cond.append(ReviewDecision.created_at > since)
    return int(
        session.scalar(
            select(func.count(func.distinct(ReviewDecision.image_id)))
            .join(Image, and_(Image.id == ReviewDecision.image_id, Image.project_id == project_id))
            .where(*cond, Image.status.in_((ImageStatus.DONE, ImageStatus.NO_OBJECTS)))
        )
        or 0
    )


def reviewed_since_last_model(session: Session, project_id: int) -> int:
    """Reviewed images that became ground truth after the project's newest model version was made."""
    since = session.scalar(select(func.max(ModelVersion.created_at)).where(ModelVersion.project_id == project_id))
    return reviewed_since(session, project_id, since)
