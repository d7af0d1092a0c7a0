"""Figures every session of the server shares, computed at most once per SHARED_TTL_S.

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
from db.engine import session_scope
from db.models import utcnow

SHARED_TTL_S = 120


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


def refresh_dataset_health() -> None:
    """Forgets the shared figures: the next run computes them afresh."""
    _health.clear()
