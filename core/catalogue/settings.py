"""A project's catalogue settings: its vocabulary (the shipped default until edited) and chosen thresholds."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.catalogue.vocabulary import Vocabulary
from db.models import CatalogueSettings


def _settings(session: Session, project_id: int, create: bool = False) -> CatalogueSettings | None:
    row = session.scalar(select(CatalogueSettings).where(CatalogueSettings.project_id == project_id))
    if row is None and create:
        row = CatalogueSettings(project_id=project_id, vocabulary=None, thresholds={})
        session.add(row)
        session.flush()
    return row


def project_vocabulary(session: Session, project_id: int) -> Vocabulary:
    """The project's vocabulary: its edited one, or the shipped default."""
    row = _settings(session, project_id)
    if row is None or row.vocabulary is None:
        return Vocabulary.default()
    return Vocabulary(tuple(r) for r in row.vocabulary)


def is_default_vocabulary(session: Session, project_id: int) -> bool:
    """Whether the project still reads listings with the shipped vocabulary."""
    row = _settings(session, project_id)
    return row is None or row.vocabulary is None


def save_vocabulary(session: Session, project_id: int, vocabulary: Vocabulary | None) -> None:
    """Stores the project's vocabulary (None: back to the shipped default)."""
    row = _settings(session, project_id, create=True)
    assert row is not None
    row.vocabulary = None if vocabulary is None else vocabulary.stored_rows()


def stored_threshold(session: Session, project_id: int, model_version_id: int) -> dict[str, Any] | None:
    """The threshold chosen on validation data for a model version, with how it was chosen, or None."""
    row = _settings(session, project_id)
    return None if row is None else (row.thresholds or {}).get(str(model_version_id))


def store_threshold(session: Session, project_id: int, model_version_id: int, choice: dict[str, Any]) -> None:
    """Keeps the threshold chosen for a model version (a later check uses it unless told another)."""
    row = _settings(session, project_id, create=True)
    assert row is not None
    row.thresholds = {**(row.thresholds or {}), str(model_version_id): choice}
