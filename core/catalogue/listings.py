"""Read queries the Catalogue page needs: how many listings, which tags model versions, the photos to show."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import CatalogueItem, ModelKind, ModelVersion


def listing_count(session: Session, project_id: int) -> int:
    """How many listings the project's catalogue holds."""
    return (
        session.scalar(select(func.count()).select_from(CatalogueItem).where(CatalogueItem.project_id == project_id))
        or 0
    )


def tags_versions(session: Session, project_id: int, kind: ModelKind = ModelKind.TAGS) -> dict[int, str]:
    """The project's model versions of a kind (tags by default), newest first: id -> "name (#id)"."""
    rows = session.execute(
        select(ModelVersion.id, ModelVersion.name)
        .where(ModelVersion.project_id == project_id, ModelVersion.kind == kind)
        .order_by(ModelVersion.id.desc())
    ).all()
    return {vid: f"{name} (#{vid})" for vid, name in rows}


def version_tags(session: Session, model_version_id: int) -> list[str]:
    """The tags a tags model version predicts (its heads), in head order."""
    version = session.get(ModelVersion, model_version_id)
    return list(((version.params or {}).get("heads") or {}) if version is not None else [])
