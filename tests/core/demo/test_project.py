"""The demo project in the database matches the generator exactly."""

from __future__ import annotations

from sqlalchemy import Engine, select

from core.demo.project import create_demo_project, ensure_demo_project
from core.demo.scenes import generate_scene
from core.project.imagestore import ImageStore
from core.settings import Settings
from db.engine import session_scope
from db.models import BoxRow, Image, ImageStatus, Label


def test_demo_project_stores_scenes_and_exact_boxes(engine: Engine, settings: Settings) -> None:
    pid = create_demo_project(engine, settings, name="demo", count=12, seed=3)
    with session_scope(engine) as session:
        images = session.scalars(select(Image).where(Image.project_id == pid).order_by(Image.id)).all()
        assert len(images) == 12
        statuses = [im.status for im in images]
        assert statuses.count(ImageStatus.DONE) == 8 and statuses.count(ImageStatus.NEW) == 4
        labels = {lab.id: lab.name for lab in session.scalars(select(Label).where(Label.project_id == pid))}
        for index, image in enumerate(images):
            scene = generate_scene(3, index)
            assert image.original_name == scene.name
            assert (image.width, image.height) == scene.image.size
            stored = sorted(
                (labels[b.label_id], b.x_min, b.y_min, b.x_max, b.y_max)
                for b in session.scalars(select(BoxRow).where(BoxRow.image_id == image.id))
            )
            expected = sorted((o.label, o.box.x_min, o.box.y_min, o.box.x_max, o.box.y_max) for o in scene.objects)
            assert stored == (expected if image.status is ImageStatus.DONE else [])
        with ImageStore(settings.data_dir).open(images[0].stored_path) as im:
            assert im.format == "JPEG" and im.size == (images[0].width, images[0].height)


def test_ensure_demo_project_only_on_an_empty_database(engine: Engine, settings: Settings, project_id: int) -> None:
    assert ensure_demo_project(engine, settings) is None  # a project exists already
