"""The review queue and decisions on stored predictions (no model: predictions inserted as a predict job stores them).

Runs on SQLite and PostgreSQL: the queue is one window-function query, and the decisions go
through the optimistic-locking save.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from core.annotate.errors import StaleRevisionError
from core.boxes import Box
from core.review.auto_accept import auto_accept
from core.review.decisions import accept, correct, no_garments, reject
from core.review.errors import NothingShownError
from core.review.item import load_review_item
from core.review.queue import first_open, review_queue
from core.settings import Settings
from db.engine import session_scope
from db.models import BoxRow, BoxSource, Image, ImageStatus, Label, ModelVersion, Prediction, ReviewDecision
from tests.core.annotate.test_annotations import add_image

pytestmark = pytest.mark.both_databases

# image name -> predictions (label, score, x_min); every box 100 px wide, 80 px tall at y 20.
PREDICTIONS = {
    "sure.jpg": [("Jeans", 0.95, 10)],
    "two-classes.jpg": [("Jeans", 0.62, 10), ("Trousers", 0.60, 12)],  # smallest margin
    "unsure.jpg": [("Shirts", 0.40, 10), ("Shirts", 0.20, 200)],  # lowest top score, all under 0.5
    "mixed.jpg": [("Shoes", 0.80, 10), ("Shoes", 0.30, 200), ("Shoes", 0.10, 400), ("Shoes", 0.05, 500)],  # most under
}


@pytest.fixture
def predicted(engine: Engine, settings: Settings, project_id: int) -> tuple[int, dict[str, int]]:
    """A model version with PREDICTIONS stored on four new 640x480 images."""
    ids = {name: add_image(engine, settings, project_id, name, (640, 480)) for name in PREDICTIONS}
    with session_scope(engine) as session:
        labels = {lab.name: lab.id for lab in session.scalars(select(Label).where(Label.project_id == project_id))}
        version = ModelVersion(project_id=project_id, name="v1", path="models/v1/model.keras")
        session.add(version)
        session.flush()
        for name, preds in PREDICTIONS.items():
            for label, score, x in preds:
                session.add(
                    Prediction(
                        model_version_id=version.id,
                        image_id=ids[name],
                        label_id=labels[label],
                        x_min=x,
                        y_min=20,
                        x_max=x + 100,
                        y_max=100,
                        score=score,
                    )
                )
        return version.id, ids


def test_queue_orders_by_top_score_margin_and_boxes_under_the_threshold(engine: Engine, project_id: int, predicted):
    version, ids = predicted
    with session_scope(engine) as session:
        by_top = review_queue(session, project_id, version, threshold=0.5)
        by_margin = review_queue(session, project_id, version, threshold=0.5, order="margin")
        by_below = review_queue(session, project_id, version, threshold=0.5, order="below")
    assert [q.name for q in by_top] == ["unsure.jpg", "two-classes.jpg", "mixed.jpg", "sure.jpg"]
    assert [q.name for q in by_margin][0] == "two-classes.jpg"
    assert by_margin[0].margin == pytest.approx(0.02)
    assert [(q.name, q.below) for q in by_below][:2] == [("mixed.jpg", 3), ("unsure.jpg", 2)]
    top = {q.name: (q.top_label, q.top_score) for q in by_top}
    assert top["two-classes.jpg"] == ("Jeans", pytest.approx(0.62))


def test_accept_correct_reject_and_the_queue_moves_on(engine: Engine, project_id: int, predicted) -> None:
    version, ids = predicted
    with session_scope(engine) as session:
        sure = load_review_item(session, ids["sure.jpg"], version, 0.5)
        mixed = load_review_item(session, ids["mixed.jpg"], version, 0.5)
        two = load_review_item(session, ids["two-classes.jpg"], version, 0.5)
    assert (len(mixed.predictions), mixed.hidden) == (1, 3)
    with session_scope(engine) as session:
        assert accept(session, sure, "rev").decisions == {"accepted": 1}
    # Its Trousers box is the Jeans box again (IoU 0.96): one box shown, Trousers the alternative.
    assert [p.label for p in two.predictions] == ["Jeans"]
    assert [a.label for a in two.alternatives[two.predictions[0].id]] == ["Trousers"]
    moved = Box(15, 25, 115, 105)
    with session_scope(engine) as session:  # Jeans moved, a missed shoe added
        result = correct(session, two, [("Jeans", moved), ("Shoes", Box(400, 300, 480, 360))], "rev", tolerance=0.5)
    assert result.decisions == {"moved": 1, "added": 1}
    with session_scope(engine) as session, pytest.raises(StaleRevisionError):
        accept(session, two, "someone else")  # the copy loaded before the save is stale
    with session_scope(engine) as session:
        reject(session, mixed, "rev", reason="wrong garments")
    with session_scope(engine) as session:
        assert session.get(Image, ids["sure.jpg"]).status is ImageStatus.DONE
        rows = session.scalars(select(BoxRow).where(BoxRow.image_id == ids["two-classes.jpg"]).order_by(BoxRow.id))
        assert [(b.source, b.x_min) for b in rows] == [(BoxSource.HUMAN, 15.0), (BoxSource.HUMAN, 400.0)]
        decided = session.scalars(select(ReviewDecision.decision).where(ReviewDecision.image_id == ids["mixed.jpg"]))
        assert sorted(decided) == ["rejected", "rejected"]  # the shown box and the image
        queue = review_queue(session, project_id, version, threshold=0.5)
        assert [q.name for q in queue] == ["unsure.jpg"]  # done images and the rejected one have left
        assert first_open(session, version, [ids["sure.jpg"], ids["mixed.jpg"], ids["unsure.jpg"]]) == ids["unsure.jpg"]


def test_nothing_on_the_canvas_is_not_saved_as_no_garments_by_accident(engine: Engine, predicted) -> None:
    version, ids = predicted
    with session_scope(engine) as session:
        unsure = load_review_item(session, ids["unsure.jpg"], version, 0.5)
    assert not unsure.predictions and unsure.hidden == 2
    for action in (lambda s: accept(s, unsure, "rev"), lambda s: correct(s, unsure, [], "rev", tolerance=0.5)):
        with session_scope(engine) as session, pytest.raises(NothingShownError, match="2 prediction"):
            action(session)
    with session_scope(engine) as session:
        image = session.get(Image, ids["unsure.jpg"])
        assert (image.status, image.revision) == (ImageStatus.NEW, 0)
    # Drawing the garment works as usual, and so does saying there is none.
    with session_scope(engine) as session:
        assert correct(session, unsure, [("Shirts", Box(12, 22, 110, 100))], "rev", tolerance=0.5).decisions == {
            "added": 1
        }
    with session_scope(engine) as session:
        sure = load_review_item(session, ids["sure.jpg"], version, 0.99)  # its 0.95 box hidden too
        no_garments(session, sure, "rev")
    with session_scope(engine) as session:
        assert session.get(Image, ids["sure.jpg"]).status is ImageStatus.NO_OBJECTS
        assert session.get(Image, ids["unsure.jpg"]).status is ImageStatus.DONE


def test_one_box_predicted_as_two_classes_is_shown_and_accepted_once(
    engine: Engine, settings: Settings, project_id: int
) -> None:
    """A young model's Shirts 0.32 and Jackets 0.32 on one garment (issue 13): one box, the other label a hint."""
    image = add_image(engine, settings, project_id, "pair.jpg", (640, 480))
    with session_scope(engine) as session:
        labels = {lab.name: lab.id for lab in session.scalars(select(Label).where(Label.project_id == project_id))}
        version = ModelVersion(project_id=project_id, name="young", path="models/young/model.keras")
        session.add(version)
        session.flush()
        for label, score, box in [
            ("Shirts", 0.32, (100, 100, 300, 400)),
            ("Jackets", 0.32, (100, 100, 300, 401)),  # the same garment
            ("Tops", 0.10, (101, 99, 300, 400)),  # and a weaker third guess
            ("Jeans", 0.30, (100, 300, 300, 470)),  # overlaps, a different garment
        ]:
            session.add(
                Prediction(
                    model_version_id=version.id,
                    image_id=image,
                    label_id=labels[label],
                    x_min=box[0],
                    y_min=box[1],
                    x_max=box[2],
                    y_max=box[3],
                    score=score,
                )
            )
        version_id = version.id
    with session_scope(engine) as session:
        item = load_review_item(session, image, version_id, 0.25)
    assert [(p.label, p.score) for p in item.predictions] == [("Shirts", 0.32), ("Jeans", 0.30)]
    shirt = item.predictions[0]
    assert [(a.label, a.score) for a in item.alternatives[shirt.id]] == [("Jackets", 0.32), ("Tops", 0.10)]
    assert item.predictions[1].id not in item.alternatives and item.hidden == 0
    with session_scope(engine) as session:
        result = accept(session, item, "rev")
    assert result.decisions == {"accepted": 2}
    with session_scope(engine) as session:
        stored = session.scalars(select(BoxRow).where(BoxRow.image_id == image).order_by(BoxRow.id)).all()
        assert [(b.label_id, b.score) for b in stored] == [(labels["Shirts"], 0.32), (labels["Jeans"], 0.30)]
    # The duplicate is not shown under a higher threshold either: the hidden count is one per garment.
    with session_scope(engine) as session:
        high = load_review_item(session, image, version_id, 0.5)
    assert (high.predictions, high.hidden) == ((), 2)


def test_auto_accept_stores_one_box_for_a_garment_predicted_as_two_classes(
    engine: Engine, settings: Settings, project_id: int
) -> None:
    image = add_image(engine, settings, project_id, "two-names.jpg", (640, 480))
    with session_scope(engine) as session:
        labels = {lab.name: lab.id for lab in session.scalars(select(Label).where(Label.project_id == project_id))}
        version = ModelVersion(project_id=project_id, name="v", path="models/v/model.keras")
        session.add(version)
        session.flush()
        for label, score in (("Shirts", 0.91), ("Jackets", 0.90)):
            session.add(
                Prediction(
                    model_version_id=version.id,
                    image_id=image,
                    label_id=labels[label],
                    x_min=10,
                    y_min=10,
                    x_max=200,
                    y_max=300,
                    score=score,
                )
            )
        version_id = version.id
    with session_scope(engine) as session:
        result = auto_accept(session, project_id, version_id, {"Shirts": 0.8, "Jackets": 0.8}, audit_fraction=0.0)
    assert (result.accepted, result.left) == (1, 0)
    with session_scope(engine) as session:
        stored = session.scalars(select(BoxRow).where(BoxRow.image_id == image)).all()
        assert [(b.label_id, b.score) for b in stored] == [(labels["Shirts"], 0.91)]


def test_auto_accept_skips_an_image_whose_save_is_refused_and_goes_on(
    engine: Engine, settings: Settings, project_id: int
) -> None:
    # "stored.jpg" already has a Shirts box where the model sees Jackets: saving both is one garment
    # with two labels, which a save refuses. It comes first in the queue (lower top score).
    refused = add_image(engine, settings, project_id, "stored.jpg", (640, 480))
    clean = add_image(engine, settings, project_id, "clean.jpg", (640, 480))
    with session_scope(engine) as session:
        labels = {lab.name: lab.id for lab in session.scalars(select(Label).where(Label.project_id == project_id))}
        version = ModelVersion(project_id=project_id, name="v", path="models/v/model.keras")
        session.add(version)
        session.add(
            BoxRow(
                image_id=refused,
                label_id=labels["Shirts"],
                **Box(10, 10, 200, 300).as_columns(),
                source=BoxSource.HUMAN,
                created_by="ann",
                updated_by="ann",
            )
        )
        session.flush()
        for image, score in ((refused, 0.85), (clean, 0.95)):
            session.add(
                Prediction(
                    model_version_id=version.id,
                    image_id=image,
                    label_id=labels["Jackets"],
                    **Box(10, 10, 200, 300).as_columns(),
                    score=score,
                )
            )
        version_id = version.id
    with session_scope(engine) as session:
        before = session.get(Image, refused).revision
        assert [q.image_id for q in review_queue(session, project_id, version_id)] == [refused, clean]
    with session_scope(engine) as session:
        result = auto_accept(session, project_id, version_id, {"Jackets": 0.8}, audit_fraction=0.0)
    assert (result.accepted, result.refused, result.left) == (1, 1, 0)
    assert len(result.problems) == 1 and result.problems[0].startswith("stored.jpg: Not saved:")
    assert "same box" in result.problems[0]
    with session_scope(engine) as session:
        kept = session.get(Image, refused)
        assert (kept.status, kept.revision) == (ImageStatus.NEW, before)  # nothing of it was written
        assert [b.label_id for b in session.scalars(select(BoxRow).where(BoxRow.image_id == refused))] == [
            labels["Shirts"]
        ]
        assert not session.scalars(select(ReviewDecision).where(ReviewDecision.image_id == refused)).all()
        assert session.get(Image, clean).status is ImageStatus.DONE
        assert [q.image_id for q in review_queue(session, project_id, version_id)] == [refused]  # left for people
