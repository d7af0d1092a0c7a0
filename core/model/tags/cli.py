"""The tags model's side of ``python -m core``: ``train --model tags``, ``predict`` and ``evaluate`` of tags versions.

:mod:`core.cli` registers the subcommands and hands over here when the model is a tags model.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from core.settings import Settings


def add_train_args(p: argparse.ArgumentParser) -> None:
    """The ``train`` options only the tags model has."""
    from core.model.tags.jobs import DEFAULTS

    p.add_argument(
        "--model",
        choices=("detector", "tags"),
        default="detector",
        help="what to train: the box detector (default) or the tags model (category and schema attributes per image)",
    )
    p.add_argument(
        "--balance",
        choices=("weights", "oversample", "none"),
        help="tags: class balancing (default weights: loss weights toward the median value count)",
    )
    p.add_argument(
        "--image-size", type=int, help=f"tags: square input side in pixels (default {DEFAULTS['image_size']})"
    )
    p.add_argument(
        "--views",
        type=int,
        choices=(1, 2, 4),
        help="tags: views per training image: 1 as is, 2 and mirrored, 4 and two random crops (default "
        f"{DEFAULTS['views']})",
    )
    p.add_argument(
        "--members",
        type=int,
        help="tags: tops trained from different seeds on the one feature pass, logits averaged (default "
        f"{DEFAULTS['members']})",
    )
    p.add_argument(
        "--flip-average",
        action=argparse.BooleanOptionalAction,
        help="tags: predict from the image and its mirror, logits averaged (default "
        f"{'on' if DEFAULTS['flip_average'] else 'off'})",
    )


def train_params(args: argparse.Namespace, project_id: int) -> dict[str, Any]:
    """The train-tags job's parameters from the ``train`` arguments (unset ones keep the defaults)."""
    from core.model.tags.jobs import tags_train_params

    if args.minutes == 0 and args.epochs is None:
        from core.cli import CliError

        raise CliError("--minutes 0 trains without a time budget: say how long with --epochs N.")
    return tags_train_params(
        project_id,
        budget_minutes=args.minutes,
        epochs=args.epochs,
        patience=args.patience,
        weights=args.weights,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        name=args.name,
        balance=args.balance,
        image_size=args.image_size,
        views=args.views,
        flip_average=args.flip_average,
        members=args.members,
    )


def train(args: argparse.Namespace, settings: Settings, engine: Engine, project_id: Any) -> int:
    """``train --model tags``: a train-tags job, run here or detached."""
    from core.cli import CliError, _run_or_detach
    from core.jobs import JobError, create_job
    from core.model.tags.jobs import TRAIN_KIND, tags_resume_params
    from db.engine import session_scope

    try:
        with session_scope(engine) as session:
            if args.resume is not None:
                params = tags_resume_params(session, args.resume)
            else:
                params = train_params(args, project_id())
            job_id = create_job(session, TRAIN_KIND, params, project_id=int(params["project_id"]), exclusive=True).id
    except JobError as exc:
        raise CliError(str(exc)) from exc
    return _run_or_detach(settings, engine, job_id, args.detach)


def predict_files(settings: Settings, path: Path, files: list[Path], min_score: float) -> list[dict[str, Any]]:
    """``predict --model-version ID FILES`` for a tags version: each head's top values with calibrated confidence.

    Values at or above ``min_score`` are listed (always the top one), most likely first.
    """
    from core.cli import CliError
    from core.model.tags.model import Tagger

    for f in files:
        if not Path(f).is_file():
            raise CliError(f"{f}: no such file")
    tagger = Tagger.load(path)
    out = []
    for f in files:
        try:
            probs = tagger.predict_files([Path(f)])[0]
        except OSError as exc:
            raise CliError(f"{f}: not a readable image ({exc})") from exc
        tags = {}
        for tag, by_value in probs.items():
            ranked = sorted(by_value.items(), key=lambda kv: -kv[1])
            tags[tag] = {
                "value": ranked[0][0],
                "confidence": round(ranked[0][1], 4),
                "alternatives": [{"value": v, "confidence": round(p, 4)} for v, p in ranked[1:] if p >= min_score],
            }
        out.append({"image": str(f), "tags": tags})
    return out


def print_table(results: list[dict[str, Any]]) -> None:
    """A short human-readable summary on stderr (stdout keeps the JSON)."""
    for r in results:
        parts = [f"{tag}={t['value']} ({t['confidence']:.2f})" for tag, t in r["tags"].items()]
        print(f"{r['image']}: {', '.join(parts)}", file=sys.stderr)


def predict_stored_job(
    args: argparse.Namespace, settings: Settings, engine: Engine, version_id: int, project_id: int
) -> int:
    """``predict --images SET`` for a tags version: a predict-tags job."""
    from core.cli import CliError, _run_or_detach
    from core.jobs import JobError, create_job
    from core.model.prediction import PredictionError, select_images
    from core.model.tags.jobs import PREDICT_KIND
    from db.engine import session_scope

    try:
        with session_scope(engine) as session:
            select_images(session, project_id, args.images)
            params = {"model_version_id": version_id, "images": args.images, "batch_size": args.batch_size}
            job_id = create_job(session, PREDICT_KIND, params, project_id=project_id, exclusive=True).id
    except (JobError, PredictionError) as exc:
        raise CliError(str(exc)) from exc
    return _run_or_detach(settings, engine, job_id, args.detach)


def evaluate(args: argparse.Namespace, settings: Settings, engine: Engine, version_id: int, project_id: int) -> int:
    """``evaluate --model-version ID`` for a tags version: an evaluate-tags job on the test split."""
    from core.cli import CliError, _run_or_detach
    from core.jobs import JobError, create_job
    from core.model.tags.jobs import EVALUATE_KIND
    from db.engine import session_scope

    try:
        with session_scope(engine) as session:
            job_id = create_job(
                session, EVALUATE_KIND, {"model_version_id": version_id}, project_id=project_id, exclusive=True
            ).id
    except JobError as exc:
        raise CliError(str(exc)) from exc
    return _run_or_detach(settings, engine, job_id, args.detach)
