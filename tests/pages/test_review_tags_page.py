"""Review tags page (AppTest, real database): empty state, accept / change / skip, auto-accept, the summary."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from db.engine import session_scope
from db.models import Image, ImageStatus, Project, ReviewDecision
from tests.core.tags_factory import add_tags_version

HEADS = {"colour": ["single", "multi"], "pattern": ["solid", "printed"]}


def insert_tag_predictions(engine, rows: list[tuple[str, str, float]], image_ids: list[int] | None = None) -> list[int]:
    """A tags version (no model file: the page never loads it) with (tag, value, confidence) on images in turn.

    The images are ``image_ids``, or the first new images by id.
    """
    with session_scope(engine) as session:
        pid = session.scalar(select(Project.id))
        ids = (
            image_ids
            if image_ids is not None
            else list(
                session.scalars(
                    select(Image.id).where(Image.status == ImageStatus.NEW).order_by(Image.id).limit(len(rows))
                )
            )
        )
        add_tags_version(session, pid, HEADS, [(i, *row) for i, row in zip(ids, rows, strict=True)])
        return ids


def test_review_tags_accept_change_skip(make_app: Callable[[], AppTest]) -> None:
    from ui.context import get_context

    engine = get_context().engine
    at = make_app().run()
    at.switch_page("pages/review_tags.py").run()
    assert not at.exception, at.exception
    assert any("No tags model yet" in i.value for i in at.info)
    insert_tag_predictions(engine, [])  # a version that has predicted nothing yet
    at.run()
    assert not at.exception, at.exception
    assert any("tags inserted has no suggestions yet" in i.value for i in at.info), (
        [i.value for i in at.info],
        [s.value for s in at.success],
    )
    ids = insert_tag_predictions(
        engine, [("colour", "multi", 0.93), ("pattern", "printed", 0.41), ("colour", "single", 0.66)]
    )
    at.run()
    # The chosen version stays chosen; the new one (listed first, newest first) is picked.
    next(b for b in at.selectbox if b.label == "Tags model under review").select_index(0).run()
    assert not at.exception, at.exception
    assert any("suggested · 0.41" in c.value for c in at.caption)  # lowest confidence first
    next(b for b in at.button if b.label == "Accept printed").click().run()
    assert not at.exception, at.exception
    assert any("pattern = printed accepted" in s.value for s in at.success)
    assert any("suggested · 0.66" in c.value for c in at.caption)
    # Change: the runner-up is preselected.
    assert at.selectbox(key=f"revt_change_{ids[2]}_colour").value == "multi"
    next(b for b in at.button if b.label == "Change").click().run()
    assert not at.exception, at.exception
    next(b for b in at.button if b.label == "Skip").click().run()
    assert not at.exception, at.exception
    assert any("No open tag suggestions" in s.value for s in at.success)
    with session_scope(engine) as session:
        attrs = {i: dict(session.get(Image, i).attributes or {}) for i in ids}
        assert attrs[ids[1]]["pattern"] == "printed"
        assert attrs[ids[2]]["colour"] == "multi"
        assert "colour" not in attrs[ids[0]]
        decisions = session.scalars(select(ReviewDecision).order_by(ReviewDecision.id)).all()
        assert [(d.decision, d.details["tag"], d.details["chosen"], d.who) for d in decisions] == [
            ("accepted", "pattern", "printed", "apptest"),
            ("changed", "colour", "multi", "apptest"),
            ("skipped", "colour", None, "apptest"),
        ]
    # The summary: one of two suggestions with a value accepted unchanged.
    frame = at.dataframe[-1].value
    assert set(frame["tag"]) == {"colour", "pattern"}
    assert dict(zip(frame["tag"], frame["accepted_share"], strict=True)) == {"colour": 0.0, "pattern": 1.0}
