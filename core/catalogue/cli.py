"""``python -m core catalogue import|check|vocabulary``: the Catalogue page's actions, headless."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from sqlalchemy import Engine

from core.cli import CliError, _emit, _project_id, _run_or_detach, command
from core.settings import Settings


def _configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    imp = sub.add_parser("import", help="import a catalogue CSV (sku,image,title,description + tag columns)")
    imp.add_argument("csv", type=Path, help="the catalogue CSV")
    imp.add_argument("--images", type=Path, help="folder or zip with the listings' photos")
    chk = sub.add_parser("check", help="check the listings against a tags model version's stored predictions")
    chk.add_argument("--model-version", type=int, required=True, help="a tags model version id")
    chk.add_argument("--threshold", type=float, help="flag at this mismatch score (default: chosen on validation data)")
    chk.add_argument(
        "--detector-version", type=int, help="a detector version whose main garment per photo is added as evidence"
    )
    chk.add_argument(
        "--look-alikes",
        choices=("full", "half"),
        default="full",
        help="half: weigh a disagreement inside a garment family (T-Shirt / Longsleeve) half, so gross mismatches "
        "come first and look-alike ones are rarely flagged (default: full)",
    )
    chk.add_argument("--detach", action="store_true", help="start the check as a background job and print its id")
    voc = sub.add_parser("vocabulary", help="export the project's vocabulary as CSV, or import one")
    voc.add_argument("--import", dest="import_path", type=Path, help="replace the vocabulary with this CSV")
    voc.add_argument("--default", action="store_true", help="go back to the shipped default vocabulary")
    for parser in (imp, chk, voc):
        # The common options also after the action (`catalogue import X.csv --project P`); SUPPRESS
        # keeps an absent one from overwriting the value given before the action.
        parser.add_argument("--db", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        parser.add_argument("--data-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        parser.add_argument("--project", default=argparse.SUPPRESS, help="project name or id")


@command("catalogue", "catalogue check: import listings, check them against a tags model, vocabulary", _configure)
def _catalogue(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    project_id = _project_id(engine, args)
    if args.action == "import":
        return _import(args, settings, engine, project_id)
    if args.action == "check":
        return _check(args, settings, engine, project_id)
    return _vocabulary(args, engine, project_id)


def _import(args: argparse.Namespace, settings: Settings, engine: Engine, project_id: int) -> int:
    from core.catalogue.importer import CatalogueImportError, import_catalogue, read_csv_file

    if args.images is not None and not args.images.exists():
        raise CliError(f"{args.images} does not exist.")
    try:
        report = import_catalogue(engine, settings.data_dir, project_id, read_csv_file(args.csv), args.images)
    except CatalogueImportError as exc:
        raise CliError(str(exc)) from exc
    for row in report.rows:
        if row.outcome == "refused":
            print(f"row {row.row}: {row.sku or '(no SKU)'}: {row.message}", file=sys.stderr)
    for note in report.notes:
        print(note, file=sys.stderr)
    _emit({k: v for k, v in report.as_dict().items() if k != "rows"})
    return 0


def _check(args: argparse.Namespace, settings: Settings, engine: Engine, project_id: int) -> int:
    from core.catalogue.check import CatalogueCheckError, stored_results, tags_version
    from core.jobs import create_job, run_job
    from db.engine import session_scope
    from db.models import Job, JobStatus

    with session_scope(engine) as session:
        try:
            tags_version(session, project_id, args.model_version)
        except CatalogueCheckError as exc:
            raise CliError(str(exc)) from exc
        params = {
            "project_id": project_id,
            "model_version_id": args.model_version,
            "threshold": args.threshold,
            "detector_version_id": args.detector_version,
            "look_alikes": args.look_alikes,
        }
        job_id = create_job(session, "catalogue-check", params, project_id=project_id).id
    if args.detach:
        return _run_or_detach(settings, engine, job_id, True)
    # The job's log lines go to stderr: stdout carries only the JSON.
    with contextlib.redirect_stdout(sys.stderr):
        status = run_job(settings, engine, job_id)
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        if status is not JobStatus.SUCCEEDED:
            raise CliError(f"the check failed: {job.error}")
        summary = job.result or {}
        results = stored_results(session, project_id, args.model_version)
    unchecked = summary.get("not_checked", 0) + summary.get("partly_checked", 0)
    if unchecked:
        print(
            f"{unchecked} listings have photos without a prediction from model version {args.model_version}; "
            "run the tags prediction job over them first (see each listing's missing_predictions)",
            file=sys.stderr,
        )
    print(f"threshold: {summary.get('threshold')}", file=sys.stderr)
    _emit(results)
    return 0


def _vocabulary(args: argparse.Namespace, engine: Engine, project_id: int) -> int:
    from core.catalogue.settings import project_vocabulary, save_vocabulary
    from core.catalogue.vocabulary import Vocabulary, VocabularyError
    from db.engine import session_scope

    with session_scope(engine) as session:
        if args.default:
            save_vocabulary(session, project_id, None)
        elif args.import_path is not None:
            try:
                vocabulary = Vocabulary.from_csv(args.import_path.read_text(encoding="utf-8-sig"))
            except (OSError, UnicodeDecodeError, VocabularyError) as exc:
                raise CliError(f"{args.import_path}: {exc}") from exc
            save_vocabulary(session, project_id, vocabulary)
        else:
            sys.stdout.write(project_vocabulary(session, project_id).to_csv())
            return 0
        print(f"{len(project_vocabulary(session, project_id).rows)} phrases", file=sys.stderr)
    return 0
