"""``python -m core export-model --model-version ID --format FORMAT OUT``: the Train page's "Download for deployment"."""

from __future__ import annotations

import argparse
from pathlib import Path

from sqlalchemy import Engine

from core.cli import CliError, _run_or_detach, command
from core.model.export.formats import FORMATS
from core.settings import Settings


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-version", type=int, required=True, help="model version id")
    p.add_argument("--format", required=True, choices=list(FORMATS), help="deployment format")
    p.add_argument("out", type=Path, help="where to write the zip (model, labels, README, example script)")
    p.add_argument("--detach", action="store_true", help="start a background job and return at once")


@command(
    "export-model",
    "export a model version for deployment (SavedModel, TFLite fp32/fp16/int8, ONNX), checked against Keras",
    _configure,
)
def _export_model(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    from core.jobs import create_job
    from core.model.export.formats import ExportError
    from core.model.export.job import JOB_KIND, export_params
    from db.engine import session_scope
    from db.models import ModelVersion

    if args.out.is_dir():
        raise CliError(f"{args.out} is a folder; give the zip's file name (e.g. model-{args.model_version}.zip).")
    try:
        with session_scope(engine) as session:
            version = session.get(ModelVersion, args.model_version)
            if version is None:
                raise CliError(f"No model version #{args.model_version}.")
            params = export_params(args.model_version, args.format, str(args.out.resolve()))
            job_id = create_job(session, JOB_KIND, params, version.project_id).id
    except ExportError as exc:
        raise CliError(str(exc)) from exc
    return _run_or_detach(settings, engine, job_id, args.detach)
