"""Review page (AppTest, real database): empty state, an item with its predictions, accept, and the Train page count."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from db.engine import session_scope
from db.models import Image, ImageStatus, Label, ModelKind, ModelVersion, Prediction, Project, ReviewDecision


def _insert_predictions(limit: int = 3) -> list[int]:
    """A model version (no file: the page never loads the model) with one box on a few new images."""
    from ui.context import get_context

    with session_scope(get_context().engine) as session:
        pid = session.scalar(select(Project.id))
        jeans = session.scalar(select(Label.id).where(Label.project_id == pid, Label.name == "Jeans"))
        version = ModelVersion(project_id=pid, name="inserted", path="models/none/model.keras")
        session.add(version)
        session.flush()
        ids = list(
            session.scalars(select(Image.id).where(Image.status == ImageStatus.NEW).order_by(Image.id).limit(limit))
        )
        for k, image_id in enumerate(ids):
            session.add(
                Prediction(
                    model_version_id=version.id,
                    image_id=image_id,
                    label_id=jeans,
                    x_min=20,
                    y_min=30,
                    x_max=120,
                    y_max=200,
                    score=0.9 - 0.1 * k,
                )
            )
        return ids


def test_review_page_without_predictions_then_accept_one_item(make_app: Callable[[], AppTest]) -> None:
    at = make_app().run()
    at.switch_page("pages/review.py").run()
    assert not at.exception, at.exception
    assert any("No detector version yet" in i.value for i in at.info)
    ids = _insert_predictions()
    at.run()
    assert not at.exception, at.exception
    # Lowest top score first: the third image (0.70).
    assert any("3 to review · top score 0.70" in m.value for m in at.markdown)
    next(b for b in at.button if b.label == "Accept as is").click().run()
    assert not at.exception, at.exception
    assert any("2 to review · top score 0.80" in m.value for m in at.markdown)
    from ui.context import get_context

    with session_scope(get_context().engine) as session:
        image = session.get(Image, ids[2])
        assert image.status is ImageStatus.DONE
        decisions = session.scalars(select(ReviewDecision).where(ReviewDecision.image_id == ids[2])).all()
        assert [d.decision for d in decisions] == ["accepted"] and decisions[0].who == "apptest"
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    # The inserted version is older than the review: one reviewed image is new since it.
    assert any("1 reviewed image(s) are new since the last model" in i.value for i in at.info)


def test_accept_with_nothing_on_the_canvas_is_refused_until_no_garments_is_said(
    make_app: Callable[[], AppTest],
) -> None:
    """Every prediction under the threshold: A and S save nothing; "No garments" marks it done, empty."""
    from ui.context import get_context

    at = make_app().run()
    at.switch_page("pages/review.py").run()
    (image_id,) = _insert_predictions(limit=1)  # one Jeans box at 0.90
    at.run()
    next(s for s in at.slider if s.label == "Confidence threshold").set_value(0.95).run()
    assert not at.exception, at.exception
    assert any("1 to review · top score 0.90" in m.value for m in at.markdown)
    for name in ("Accept as is", "Save corrections"):
        next(b for b in at.button if b.label == name).click().run()
        assert not at.exception, at.exception
        assert any(
            "saving would mark it as having no garments" in w.value and "1 prediction(s) are under" in w.value
            for w in at.warning
        ), name
        assert any("1 to review" in m.value for m in at.markdown)  # the same item stays
    with session_scope(get_context().engine) as session:
        image = session.get(Image, image_id)
        assert image.status is ImageStatus.NEW and image.revision == 0
        assert not session.scalars(select(ReviewDecision).where(ReviewDecision.image_id == image_id)).all()
    next(b for b in at.button if b.label == "Skip").click().run()  # moving on clears the message
    assert not at.exception, at.exception
    assert not at.warning
    next(b for b in at.button if b.label == "No garments in this image").click().run()
    assert not at.exception, at.exception
    with session_scope(get_context().engine) as session:
        image = session.get(Image, image_id)
        assert image.status is ImageStatus.NO_OBJECTS and image.revision == 1


def test_a_model_version_without_predictions_opens_the_predict_panel(make_app: Callable[[], AppTest]) -> None:
    """The message points "above" to the predict panel, so the panel must be open to be seen."""
    from ui.context import get_context

    def panel_open(at: AppTest) -> bool:
        (panel,) = [e for e in at.expander if e.label == "Predict with a model version"]
        return panel.proto.expanded

    at = make_app().run()
    with session_scope(get_context().engine) as session:
        pid = session.scalar(select(Project.id))
        never_run = ModelVersion(project_id=pid, name="never run", path="models/none/model.keras")
        session.add(never_run)
        session.flush()
        never_run_id = never_run.id
    at.switch_page("pages/review.py").run()
    assert not at.exception, at.exception
    assert any("No predictions yet" in i.value and "'Predict with a model version' above" in i.value for i in at.info)
    assert panel_open(at)
    # Once a version has predictions the panel steps aside for the queue...
    _insert_predictions(limit=1)
    at.run()
    assert not at.exception, at.exception
    assert not panel_open(at) and any("1 to review" in m.value for m in at.markdown)
    # ...and opens again, offering that version, when the one chosen for review was never run.
    next(s for s in at.selectbox if s.label == "Model version under review").set_value(never_run_id).run()
    assert not at.exception, at.exception
    assert panel_open(at)
    assert any(f"#{never_run_id} never run has no predictions yet" in i.value and "above" in i.value for i in at.info)
    assert next(s for s in at.selectbox if s.label == "Model version").value == never_run_id


# Buttons that move to another image without writing anything of their own, and buttons
# that write (a save, a decision). Annotate's moves save the annotator's own unsaved edits first.
ANNOTATE_MOVES = {"Previous", "Next", "Next new image"}
ANNOTATE_WRITES = {"Save", "No garments in this image"}
REVIEW_MOVES = {"Skip"}
REVIEW_WRITES = {"Accept as is", "Save corrections", "Reject image", "No garments in this image"}


def test_no_key_is_a_move_on_one_page_and_a_write_on_the_other(make_app: Callable[[], AppTest]) -> None:
    at = make_app().run()
    at.switch_page("pages/annotate.py").run()
    assert not at.exception, at.exception
    annotate = {b.label: b.proto.shortcut for b in at.button if b.label in ANNOTATE_MOVES | ANNOTATE_WRITES}
    annotate_hint = next(c.value for c in at.caption if c.value.startswith("Keys:"))
    _insert_predictions(limit=1)
    at.switch_page("pages/review.py").run()
    assert not at.exception, at.exception
    review = {b.label: b.proto.shortcut for b in at.button if b.label in REVIEW_MOVES | REVIEW_WRITES}
    review_hint = next(c.value for c in at.caption if c.value.startswith("Keys:"))
    assert set(annotate) == ANNOTATE_MOVES | ANNOTATE_WRITES and set(review) == REVIEW_MOVES | REVIEW_WRITES

    def keys(page: dict[str, str], names: set[str]) -> dict[str, str]:
        return {page[n]: n for n in names if page[n]}

    for moves, writes in (
        (keys(annotate, ANNOTATE_MOVES), keys(review, REVIEW_WRITES)),
        (keys(review, REVIEW_MOVES), keys(annotate, ANNOTATE_WRITES)),
    ):
        clash = {k: (moves[k], writes[k]) for k in moves.keys() & writes.keys()}
        assert not clash, f"same key, a move on one page and a write on the other: {clash}"
    # Every write of the Review page has a key, and "no garments" is the same key on both pages.
    assert all(review[n] for n in REVIEW_WRITES)
    assert annotate["No garments in this image"] == review["No garments in this image"]
    # The in-page key hints name the keys the buttons have.
    assert "Shift+F next new" in annotate_hint and "Shift+N no garments" in annotate_hint
    assert "Shift+N no garments" in review_hint and "K skip" in review_hint


def test_review_offers_detector_versions_only(make_app: Callable[[], AppTest]) -> None:
    # A tags model predicts no boxes: with only a tags version, Review still says there is no detector.
    from ui.context import get_context

    at = make_app().run()
    with session_scope(get_context().engine) as session:
        pid = session.scalar(select(Project.id))
        session.add(ModelVersion(project_id=pid, kind=ModelKind.TAGS, name="tags only", path="models/none/model.keras"))
    at.switch_page("pages/review.py").run()
    assert not at.exception, at.exception
    assert any("No detector version yet" in i.value for i in at.info)
    assert not any("tags only" in str(s.options) for s in at.selectbox)
