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
