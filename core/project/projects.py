"""Projects, their label sets and attribute schemas."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.project.labels import CLOTHING_LABELS, DEFAULT_ATTRIBUTE_SCHEMA, PALETTE
from db.models import Activity, BoxRow, Image, Label, Project


class ProjectError(ValueError):
    """A project or label operation that cannot be done (the message says why)."""


def colour_for(index: int) -> str:
    """The palette colour for the label at ``index``."""
    return PALETTE[index % len(PALETTE)]


def create_project(
    session: Session,
    name: str,
    labels: Sequence[str] = CLOTHING_LABELS,
    attribute_schema: dict[str, list[str]] | None = None,
    description: str = "",
) -> Project:
    """Creates a project with its labels.

    Raises:
        ProjectError: When the name is empty or taken, or labels repeat.
    """
    name = name.strip()
    if not name:
        raise ProjectError("A project needs a name.")
    if session.scalar(select(Project.id).where(Project.name == name)) is not None:
        raise ProjectError(f"A project named {name!r} already exists.")
    project = Project(
        name=name,
        description=description,
        attribute_schema=dict(DEFAULT_ATTRIBUTE_SCHEMA if attribute_schema is None else attribute_schema),
    )
    session.add(project)
    session.flush()
    set_labels(session, project, list(labels))
    return project


def delete_empty_project(session: Session, project_id: int, who: str | None = None) -> bool:
    """Deletes a project that has no images (one made for an import whose input was refused as a whole).

    Returns:
        Whether it was deleted; a project holding images is left alone.
    """
    project = session.get(Project, project_id)
    if project is None or session.scalar(select(Image.id).where(Image.project_id == project_id).limit(1)):
        return False
    session.delete(project)
    session.flush()
    from core.accounts import audit

    audit.record(session, "project_deleted", who, project_id, name=project.name)
    return True


def get_project(session: Session, name_or_id: str | int) -> Project:
    """Finds a project by name or numeric id.

    Raises:
        ProjectError: When there is no such project.
    """
    stmt = select(Project)
    if isinstance(name_or_id, int) or str(name_or_id).isdigit():
        found = session.get(Project, int(name_or_id))
        if found is None:
            found = session.scalar(stmt.where(Project.name == str(name_or_id)))
    else:
        found = session.scalar(stmt.where(Project.name == name_or_id))
    if found is None:
        raise ProjectError(f"No project {name_or_id!r}.")
    return found


def list_projects(session: Session) -> list[Project]:
    """All projects, oldest first."""
    return list(session.scalars(select(Project).order_by(Project.id)))


def set_labels(
    session: Session, project: Project, names: list[str], colours: dict[str, str] | None = None, who: str | None = None
) -> None:
    """Makes the project's label set exactly ``names``, in that order.

    Existing labels keep their id (so boxes keep pointing at them); new ones are added;
    a label that is dropped is deleted only when no box uses it.

    Raises:
        ProjectError: On empty or repeated names, or when a dropped label still has boxes.
    """
    cleaned = [n.strip() for n in names]
    if any(not n for n in cleaned):
        raise ProjectError("Label names cannot be empty.")
    dupes = {n for n in cleaned if cleaned.count(n) > 1}
    if dupes:
        raise ProjectError(f"Repeated label names: {', '.join(sorted(dupes))}.")
    colours = colours or {}
    existing = {lab.name: lab for lab in session.scalars(select(Label).where(Label.project_id == project.id))}
    deleted: list[str] = []
    for name, lab in existing.items():
        if name not in cleaned:
            used = session.scalar(select(func.count()).select_from(BoxRow).where(BoxRow.label_id == lab.id))
            if used:
                raise ProjectError(f"Label {name!r} is used by {used} boxes; relabel or delete them first.")
            session.delete(lab)
            deleted.append(name)
    for order, name in enumerate(cleaned):
        lab = existing.get(name)
        if lab is None:
            lab = Label(project_id=project.id, name=name, colour=colours.get(name, colour_for(order)))
            session.add(lab)
        elif name in colours:
            lab.colour = colours[name]
        lab.order = order
    session.flush()
    session.expire(project, ["labels"])
    if deleted:
        from core.accounts import audit

        audit.record(session, "labels_deleted", who, project.id, labels=deleted)


def set_attribute_schema(session: Session, project: Project, schema: dict[str, Any]) -> None:
    """Replaces the project's attribute schema (attribute name -> list of allowed values).

    Raises:
        ProjectError: When an attribute has no values or a value repeats.
    """
    clean: dict[str, list[str]] = {}
    for key, values in schema.items():
        key = str(key).strip()
        vals = [str(v).strip() for v in values if str(v).strip()]
        if not key:
            raise ProjectError("Attribute names cannot be empty.")
        if not vals:
            raise ProjectError(f"Attribute {key!r} needs at least one value.")
        if len(set(vals)) != len(vals):
            raise ProjectError(f"Attribute {key!r} repeats a value.")
        clean[key] = vals
    project.attribute_schema = clean
    session.flush()


def record_activity(session: Session, project_id: int, action: str, message: str, who: str | None = None) -> None:
    """Adds an entry to the project's activity feed."""
    session.add(Activity(project_id=project_id, action=action, message=message, who=who))
