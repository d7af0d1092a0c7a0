"""The demo project: synthetic clothing scenes stored like uploaded photos.

About two thirds of the scenes are stored with their exact boxes and marked done; the
rest stay new, for the model-in-the-loop pages (predict, review).
"""

from __future__ import annotations

import io

from sqlalchemy import Engine, select

from core.demo import DEMO_LABELS
from core.demo.scenes import generate_scenes
from core.project.imagestore import ImageStore
from core.project.ingest import ingest_one
from core.project.projects import create_project, record_activity
from core.settings import Settings
from db.engine import session_scope
from db.models import BoxRow, BoxSource, Image, ImageStatus, Label, Project, utcnow

DEMO_PROJECT_NAME = "Demo: clothing scenes"
DEMO_USER = "demo-generator"


def create_demo_project(
    engine: Engine,
    settings: Settings,
    name: str = DEMO_PROJECT_NAME,
    count: int = 300,
    seed: int = 0,
    labelled_fraction: float = 2 / 3,
) -> int:
    """Creates the demo project and fills it with generated scenes.

    Args:
        engine: Database engine (schema already migrated).
        settings: Where the blobs go.
        name: Project name; must be free.
        count: Number of scenes.
        seed: Generator seed; the same seed gives the same project.
        labelled_fraction: Share of scenes stored with their boxes as done.

    Returns:
        The new project's id.
    """
    store = ImageStore(settings.data_dir)
    labelled = round(count * labelled_fraction)
    with session_scope(engine) as session:
        project = create_project(
            session, name, labels=DEMO_LABELS, description="Synthetic scenes with exact boxes, made on first start."
        )
        label_ids = {lab.name: lab.id for lab in session.scalars(select(Label).where(Label.project_id == project.id))}
        taken: set[str] = set()
        for i, scene in enumerate(generate_scenes(count, seed=seed)):
            buf = io.BytesIO()
            scene.image.save(buf, format="JPEG", quality=92)
            outcome = ingest_one(session, store, project.id, scene.name, buf.getvalue(), taken)
            if outcome.outcome != "imported" or i >= labelled:
                continue
            image = session.get(Image, outcome.image_id)
            assert image is not None
            now = utcnow()
            for obj in scene.objects:
                b = obj.box
                session.add(
                    BoxRow(
                        image_id=image.id,
                        label_id=label_ids[obj.label],
                        **b.as_columns(),
                        source=BoxSource.HUMAN,
                        created_by=DEMO_USER,
                        updated_by=DEMO_USER,
                        created_at=now,
                        updated_at=now,
                    )
                )
            image.status = ImageStatus.DONE
            image.revision = 1
            image.updated_by = DEMO_USER
        record_activity(
            session, project.id, "demo", f"demo project created: {count} scenes, {labelled} labelled", DEMO_USER
        )
        return project.id


def ensure_demo_project(engine: Engine, settings: Settings) -> int | None:
    """Creates the demo project when the database has no project at all (first start).

    Returns:
        The demo project's id when it was created now, else None.
    """
    with session_scope(engine) as session:
        if session.scalar(select(Project.id).limit(1)) is not None:
            return None
    return create_demo_project(engine, settings)
