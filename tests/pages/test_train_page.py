"""Train page (AppTest, real database): the form, and the refusal while a training is active."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from core.jobs import create_job
from core.training import JOB_KIND, train_params
from db.engine import session_scope
from db.models import Project


def _open_train(make_app: Callable[[], AppTest]) -> AppTest:
    at = make_app().run()
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    return at


def test_train_page_offers_the_form_and_no_models_yet(make_app: Callable[[], AppTest]) -> None:
    at = _open_train(make_app)
    assert any(b.label == "Start training" for b in at.button)
    assert any(n.label == "Epochs" for n in at.number_input)
    assert any("No model yet" in c.value for c in at.caption)


def test_second_training_is_refused_with_a_message(make_app: Callable[[], AppTest]) -> None:
    at = _open_train(make_app)
    from ui.context import get_context

    engine = get_context().engine
    with session_scope(engine) as session:
        pid = session.scalar(select(Project.id))
        create_job(session, JOB_KIND, train_params(pid), pid, exclusive=True)  # queued, never launched
    at.run()
    assert not at.exception, at.exception
    assert any("one training per project at a time" in i.value for i in at.info)
    assert not any(b.label == "Start training" for b in at.button)
