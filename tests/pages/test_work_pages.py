"""Assigned work and the review stage through the pages (AppTest, signed in, real SQLite file)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from core.accounts.assignment import assign
from core.accounts.review_stage import set_stage
from core.annotate.save import save_boxes
from core.annotate.state import load_image
from db.engine import make_engine, session_scope
from db.models import AuditEvent, Image, ImageAssignment, ImageReview, ImageStatus
from tests.pages.signin import sign_in


def _engine(data: Path):  # type: ignore[no-untyped-def]
    return make_engine(f"sqlite:///{data / 'tagrack.db'}")


def _header(at: AppTest) -> str:
    return next(m.value for m in at.markdown if " · image " in m.value)


def test_admin_splits_the_unassigned_evenly_on_home(auth_app: Callable[[], AppTest], app_env: Path) -> None:
    at = sign_in(auth_app().run(), "boss", "boss-password")
    at.multiselect(key=next(m.key for m in at.multiselect if m.label == "People")).set_value(["ann", "rev"]).run()
    next(b for b in at.button if b.label == "Split the unassigned evenly").click().run()
    assert not at.exception, at.exception
    assert any("Split: {'ann': 50, 'rev': 50}" in s.value for s in at.success)
    people = next(d.value for d in at.dataframe if "person" in d.value.columns)
    assert people.set_index("person").loc[["ann", "rev"], "assigned"].tolist() == [50, 50]
    engine = _engine(app_env)
    with session_scope(engine) as session:
        assert len(session.scalars(select(ImageAssignment.image_id)).all()) == 100
    engine.dispose()


def test_annotator_does_not_see_the_assign_panel_nor_others_rows(auth_app: Callable[[], AppTest]) -> None:
    at = sign_in(auth_app().run(), "ann", "ann-password")
    assert not any(m.label == "People" for m in at.multiselect)
    assert not any(b.label == "Split the unassigned evenly" for b in at.button)


def test_returned_image_comes_first_with_its_comment_then_is_accepted(
    auth_app: Callable[[], AppTest], app_env: Path
) -> None:
    engine = _engine(app_env)
    with session_scope(engine) as session:
        new = session.execute(
            select(Image.id, Image.original_name).where(Image.status == ImageStatus.NEW).order_by(Image.original_name)
        ).all()
        last_id, last_name = new[-1]
        pid = session.scalar(select(Image.project_id).where(Image.id == last_id))
        set_stage(session, pid, True, by="boss")
        assign(session, pid, "ann", 1, image_ids=[last_id], by="boss")
    with session_scope(engine) as session:
        save_boxes(session, last_id, load_image(session, last_id).revision, [], "ann", no_objects=True)

    # The reviewer returns it with a comment on Check work.
    rev = sign_in(auth_app().run(), "rev", "rev-password")
    rev.switch_page("pages/check_work.py").run()
    assert any(last_name in c.value for c in rev.caption)
    rev.text_area[0].input("There is a scarf on the chair: box it.")
    next(b for b in rev.button if b.label == "Return to annotator").click().run()
    assert not rev.exception, rev.exception
    assert any("Nothing is waiting" in s.value for s in rev.success)

    # The annotator opens Annotate on it (their own image, returned: first), the comment beside the canvas.
    ann = sign_in(auth_app().run(), "ann", "ann-password")
    ann.switch_page("pages/annotate.py").run()
    assert not ann.exception, ann.exception
    assert _header(ann).startswith(f"**{last_name}**")
    assert any("Returned by rev: There is a scarf on the chair: box it." in w.value for w in ann.warning)

    # The fix (saved again) waits for review again; the reviewer accepts it.
    with session_scope(engine) as session:
        save_boxes(session, last_id, load_image(session, last_id).revision, [], "ann", no_objects=True)
    rev.run()
    next(b for b in rev.button if b.label == "Accept").click().run()
    assert not rev.exception, rev.exception
    with session_scope(engine) as session:
        row = session.get(ImageReview, last_id)
        assert (row.state, row.reviewer, row.annotator) == ("accepted", "rev", "ann")
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("review%"))).all()
        assert sorted(actions) == ["review_accepted", "review_returned", "review_stage"]
    engine.dispose()


def test_annotator_cannot_open_check_work_but_a_reviewer_cannot_assign(auth_app: Callable[[], AppTest]) -> None:
    ann = sign_in(auth_app().run(), "ann", "ann-password")
    ann.switch_page("pages/check_work.py").run()
    assert any("Your role (annotator) cannot open Check work" in w.value for w in ann.warning)
    rev = sign_in(auth_app().run(), "rev", "rev-password")
    assert not any(b.label == "Split the unassigned evenly" for b in rev.button)
