"""Figures every session of the server shares, computed at most once per SHARED_TTL_S (REVIEW_QUEUE_TTL_S).

On a project of 100,000 images the dataset-health aggregates (every box grouped by class and
split, by person and day) take seconds; every Evaluate page run recomputed them for every
person. They describe the dataset, not the image someone is editing, so one computation serves
all sessions for a short while (the page says when it was computed and offers a refresh).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import streamlit as st
from sqlalchemy import Engine

from core.project.health import DatasetHealth, dataset_health
from core.review.queue import QueueItem, ReviewQueueFilter, review_queue
from db.engine import session_scope
from db.models import utcnow

SHARED_TTL_S = 120
REVIEW_QUEUE_TTL_S = 60


@st.cache_data(ttl=SHARED_TTL_S, show_spinner="Computing dataset health…", max_entries=64)
def _health(db_url: str, project_id: int, _engine: Engine) -> tuple[DatasetHealth, dict[str, Any], datetime]:
    from ui.evaluate_panels import health_charts

    with session_scope(_engine) as session:
        health = dataset_health(session, project_id)
    return health, health_charts(health), utcnow()


def shared_dataset_health(engine: Engine, project_id: int) -> tuple[DatasetHealth, dict[str, Any], datetime]:
    """The project's dataset health, its charts (Vega-Lite specs) and when (UTC) it was computed.

    At most SHARED_TTL_S old.
    """
    return _health(engine.url.render_as_string(hide_password=True), project_id, engine)


@st.cache_data(ttl=REVIEW_QUEUE_TTL_S, show_spinner="Ranking the predictions…", max_entries=256)
def _review_queue(
    db_url: str,
    project_id: int,
    model_version_id: int,
    threshold: float,
    order: str,
    flt: ReviewQueueFilter,
    _engine: Engine,
) -> list[QueueItem]:
    with session_scope(_engine) as session:
        return review_queue(session, project_id, model_version_id, threshold=threshold, order=order, flt=flt)


def shared_review_queue(
    engine: Engine, project_id: int, model_version_id: int, threshold: float, order: str, flt: ReviewQueueFilter
) -> list[QueueItem]:
    """The review queue (core.review.queue.review_queue), ranked at most REVIEW_QUEUE_TTL_S ago, for everyone.

    The ranking aggregates every prediction of the version over the new images (100,000
    predictions: over a second); each session used to pay it on its first Review run. The item
    shown is still checked against the database (first_open), so an image someone reviewed
    since the ranking is skipped, as with the per-session copy before.
    """
    url = engine.url.render_as_string(hide_password=True)
    return _review_queue(url, project_id, model_version_id, threshold, order, flt, engine)


def refresh_dataset_health() -> None:
    """Forgets the shared figures: the next run computes them afresh."""
    _health.clear()
