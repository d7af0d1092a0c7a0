"""The background writers of the load runs (``load.py``, ``load_browser.py``): a prediction job and a training job.

Database rows as those workers write them, not TensorFlow, which on a 2-core machine would
measure TensorFlow: 500 prediction rows per transaction every 0.5 s, and a running job's
progress and heartbeat every 0.2 s.
"""

from __future__ import annotations

import random
import threading
from typing import Any

from sqlalchemy import Engine, insert

from db.engine import session_scope
from db.models import Job, Prediction, utcnow


def background_writers(
    engine: Engine, built: dict[str, Any], stop: threading.Event, job_id: int, image_ids: list[int], max_score: float
) -> list[threading.Thread]:
    """The two writer threads (not started); they stop when ``stop`` is set.

    ``max_score`` bounds the written predictions' scores (below a review threshold they add
    rows to the ranking without adding boxes to review).
    """

    def predictor() -> None:
        rng = random.Random(7)
        vid = built["versions"][0]
        while not stop.is_set():
            rows = [
                dict(
                    model_version_id=vid,
                    image_id=rng.choice(image_ids),
                    label_id=rng.choice(built["labels"]),
                    x_min=1.0,
                    y_min=1.0,
                    x_max=20.0,
                    y_max=20.0,
                    score=rng.random() * max_score,
                    created_at=utcnow(),
                )
                for _ in range(500)
            ]
            with session_scope(engine) as session:
                session.execute(insert(Prediction), rows)
            stop.wait(0.5)

    def job_writer() -> None:
        n = 0
        while not stop.is_set():
            with session_scope(engine) as session:
                row = session.get(Job, job_id)
                assert row is not None
                row.progress = {"done": n, "total": 10**6}
                row.heartbeat_at = utcnow()
            n += 1
            stop.wait(0.2)

    return [threading.Thread(target=predictor), threading.Thread(target=job_writer)]
