"""Annotate shows the tags model's suggestions pre-selected ("suggested · 0.87"); T stores them (AppTest, real DB)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from db.engine import session_scope
from db.models import Image, ImageStatus, ReviewDecision
from tests.pages.test_review_tags_page import insert_tag_predictions


def _first_new_id(engine) -> int:
    with session_scope(engine) as session:
        return session.scalar(
            select(Image.id).where(Image.status == ImageStatus.NEW).order_by(Image.original_name).limit(1)
        )


def test_suggested_tags_are_preselected_and_one_key_stores_them(make_app: Callable[[], AppTest], app_env: Path) -> None:
    from ui.context import get_context

    engine = get_context().engine
    image_id = _first_new_id(engine)
    insert_tag_predictions(engine, [("colour", "multi", 0.87)], [image_id])
    at = make_app().run()
    at.switch_page("pages/annotate.py").run()
    assert not at.exception, at.exception
    control = next(s for s in at.get("button_group") if s.label.startswith("Colour"))
    assert control.label == "Colour — suggested · 0.87" and control.value == "multi"
    # Pre-selected, not yet stored: no unsaved change, so moving on would not store it unseen.
    assert not any("Unsaved changes" in m.value for m in at.markdown)
    button = next(b for b in at.button if b.label == "Accept 1 suggested tag")
    assert button.proto.shortcut.lower() == "t"
    button.click().run()
    assert not at.exception, at.exception
    with session_scope(engine) as session:
        assert session.get(Image, image_id).attributes["colour"] == "multi"
        (decision,) = session.scalars(select(ReviewDecision)).all()
        assert (decision.decision, decision.image_id, decision.details["chosen"]) == ("accepted", image_id, "multi")
    # Stored now: the picker shows the tag without the suggestion mark.
    assert any(s.label == "Colour" for s in at.get("button_group"))


def test_a_tags_only_project_is_tagged_on_annotate(make_app: Callable[[], AppTest], app_env: Path) -> None:
    from core.dataset.labels import import_labels
    from core.project.projects import create_project
    from tests.core.dataset_factory import jpeg_bytes
    from ui.context import get_context

    ctx = get_context()
    with session_scope(ctx.engine) as session:
        pid = create_project(session, "classes only", labels=(), attribute_schema={}).id
    tree = app_env.parent / "tree"
    for n, cls in enumerate(("Hat", "Shoes")):
        (tree / cls).mkdir(parents=True)
        (tree / cls / f"{cls}.jpg").write_bytes(jpeg_bytes(80, 60, 500 + n))
    import_labels(ctx.engine, ctx.settings, pid, tree)
    with session_scope(ctx.engine) as session:
        image_id = session.scalar(select(Image.id).where(Image.project_id == pid).order_by(Image.original_name))
    at = make_app().run()
    next(s for s in at.selectbox if s.label == "Project").set_value(pid).run()
    at.switch_page("pages/annotate.py").run()
    assert not at.exception, at.exception
    assert any("No box labels in this project" in c.value for c in at.caption)
    control = next(s for s in at.get("button_group") if s.label == "Category")
    assert control.value == "Hat"  # Hat.jpg came in from the Hat folder
    control.set_value("Shoes").run()
    next(b for b in at.button if b.label == "Save").click().run()
    assert not at.exception, at.exception
    with session_scope(ctx.engine) as session:
        assert session.get(Image, image_id).attributes == {"category": "Shoes"}
