"""``python -m core import labels PATH``: image-level labels (a CSV or a class-folder tree), registered by core/cli.py."""

from __future__ import annotations

import argparse
import json
import sys

from sqlalchemy import Engine

from core.settings import Settings


def configure(p: argparse.ArgumentParser) -> None:
    """The options only ``import labels`` reads."""
    p.add_argument(
        "--no-new-values",
        action="store_true",
        help="labels: refuse tags and values the project's schema lacks (default: add them)",
    )
    p.add_argument(
        "--ignore-column",
        action="append",
        default=[],
        metavar="NAME",
        help="labels: a CSV header column not to read as a tag (repeatable, e.g. --ignore-column sender)",
    )


def run(args: argparse.Namespace, settings: Settings, engine: Engine, project_id: int) -> tuple[int, str | None]:
    """Imports the labels; returns (exit code, error message for the CLI or None)."""
    from core.dataset.items import AnnotationImportError
    from core.dataset.labels import import_labels

    try:
        report = import_labels(
            engine,
            settings,
            project_id,
            args.path,
            images=args.images,
            add_values=not args.no_new_values,
            ignore_columns=args.ignore_column,
        )
    except AnnotationImportError as exc:
        return 1, str(exc)
    for o in report.outcomes:
        if o.outcome in ("failed", "skipped") or o.message:
            print(f"{o.outcome}: {o.source}: {o.message}", file=sys.stderr)
    summary = report.summary()
    out = {k: summary[k] for k in ("imported", "updated", "duplicate", "failed", "skipped")}
    out["added_to_schema"] = report.labels_added
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0, None
