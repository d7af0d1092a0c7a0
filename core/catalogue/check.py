"""The catalogue check: each listing's claims against a tags model version's stored predictions of its photos.

For each claimed tag, the claim's probability is the model's calibrated probability of the
claimed value (summed over the values a broad word accepts, e.g. "jacket": Outwear or Blazer),
taken on the photo that contradicts it most. A listing's mismatch score is 1 - the lowest such
probability over its claims, so a listing is as suspect as its worst claim on its worst photo.
Photos without a prediction from the version are named, never passed silently: the listing is
"partly checked" or "not checked".

``look_alikes="half"`` (an option, off by default) weighs a disagreement inside a family (the
vocabulary's look-alike groups: tops, bottoms, footwear...) half: the claim's score becomes
``1 - (probability + family probability) / 2``, the family probability summing every value of the
claimed values' families. A photo that looks like another family ("title says Hoodie, photo looks
like Shoes") still scores up to 1, a look-alike of the same family ("title says Longsleeve, photo
looks like Shirt") at most about 0.5. It puts gross mismatches first, because the tags model's
confident mistakes are mostly look-alikes; the price is that a real mismatch inside a family (a
T-shirt listed as a long-sleeve shirt) is then rarely flagged: on clothing-catalogue 3 % of such
listings against 78-83 % with the default (docs/benchmarks.md, "Catalogue check"). So it is a
choice a team makes, not the default.

The check runs as the ``catalogue-check`` job over stored ``TagPrediction`` rows (run the tags
model's prediction job first) and stores one :class:`db.models.CatalogueResult` per listing.
The flagging threshold is the one given, else the one stored for the version (when it was chosen
with the same scoring and vocabulary), else one chosen on the validation split's listings whose
photos have stored tags (the lowest threshold whose precision is at least 0.8), which is then
stored.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from core.catalogue.claims import Claim, Reading, read_listing
from core.catalogue.detector_evidence import DetectorEvidenceError, add_evidence, main_garments
from core.catalogue.settings import project_vocabulary, store_threshold, stored_threshold
from core.catalogue.vocabulary import Vocabulary, normalise_value
from core.model.tags.stored import tag_probabilities
from db.engine import session_scope
from db.models import (
    CatalogueItem,
    CatalogueItemImage,
    CatalogueResult,
    ModelKind,
    ModelVersion,
    Split,
)
from db.models import Image as ImageRow

MIN_PRECISION = 0.8
LOOK_ALIKES = ("full", "half")
# Stored with a chosen threshold: one chosen under another score or vocabulary is chosen again.
SCORING = "claim-1"
FALLBACK_THRESHOLD = 0.5
# Fewer mismatched validation listings than this and a chosen threshold would be noise.
MIN_VALIDATION_POSITIVES = 5


class CatalogueCheckError(ValueError):
    """A check that cannot run (no such model version, not a tags model, another project's version)."""


@dataclass(frozen=True)
class Photo:
    """A listing's photo as the check needs it."""

    image_id: int
    name: str
    split: str | None
    attributes: dict[str, Any]


def tags_version(session: Session, project_id: int, model_version_id: int) -> ModelVersion:
    """The tags model version to check against, or a clear refusal."""
    version = session.get(ModelVersion, model_version_id)
    if version is None or version.project_id != project_id:
        raise CatalogueCheckError(f"Model version {model_version_id} is not a model of this project.")
    if version.kind is not ModelKind.TAGS:
        raise CatalogueCheckError(
            f"Model version {model_version_id} is a {version.kind.value} model; the catalogue check needs a tags model."
        )
    return version


def version_heads(version: ModelVersion, probabilities: dict[int, dict[str, dict[str, float]]]) -> dict[str, list[str]]:
    """The version's heads (tag -> values), from its params, else from what its predictions hold."""
    heads = {str(t): [str(v) for v in vals] for t, vals in ((version.params or {}).get("heads") or {}).items()}
    if heads:
        return heads
    found: dict[str, dict[str, None]] = defaultdict(dict)
    for tags in probabilities.values():
        for tag, probs in tags.items():
            found[tag].update(dict.fromkeys(probs))
    return {t: list(v) for t, v in found.items()}


def _accepted(claim: Claim, head: list[str]) -> list[str]:
    wanted = {normalise_value(v) for v in claim.values}
    return [v for v in head if normalise_value(v) in wanted]


def _said(claim: Claim, accepted: list[str]) -> str:
    where = {"column": f"{claim.tag} column"}.get(claim.field, claim.field)
    value = " / ".join(accepted) or " / ".join(claim.values)
    if normalise_value(claim.phrase) == normalise_value(value):
        return f"{where} says {value}"
    return f'{where} says "{claim.phrase}" ({value})'


def _family_values(vocabulary: Vocabulary | None, tag: str, accepted: list[str], head: list[str]) -> list[str]:
    """The head's values in the families of the accepted values, plus the accepted values themselves."""
    if vocabulary is None:  # look-alikes weigh fully
        return accepted
    families = {f for v in accepted if (f := vocabulary.family(tag, v))}
    if not families:
        return accepted
    return [v for v in head if v in accepted or vocabulary.family(tag, v) in families]


def compare_listing(
    reading: Reading,
    photos: list[Photo],
    probabilities: dict[int, dict[str, dict[str, float]]],
    heads: dict[str, list[str]],
    families: Vocabulary | None = None,
) -> dict[str, Any]:
    """One listing's check: claims with their probabilities, the score, reasons, missing predictions.

    ``families``: the vocabulary whose families weigh look-alike disagreements half (see the
    module); None, the default: every claim scores ``1 - probability``.

    Returns:
        ``{"mismatch_score", "status", "claims", "predictions", "reasons", "missing_predictions",
        "ambiguous", "negated"}`` (JSON-able).
    """
    claims_out, reasons, scores = [], [], []
    missing: set[str] = set()
    for claim in reading.claims:
        entry: dict[str, Any] = {
            **claim.as_dict(),
            "claimed_values": list(claim.values),  # as the words mean them; "values" become the head's
            "probability": None,
            "compared": False,
            "note": "",
        }
        claims_out.append(entry)
        head = heads.get(claim.tag)
        if head is None:
            entry["note"] = f"the model predicts no {claim.tag}; not compared"
            continue
        accepted = _accepted(claim, head)
        if not accepted:
            entry["note"] = f"the model's {claim.tag} has no value {' / '.join(claim.values)}; not compared"
            continue
        entry["values"] = accepted
        family = _family_values(families, claim.tag, accepted, head)
        worst: tuple[float, float, float, int, dict[str, float]] | None = None
        for n, photo in enumerate(photos):
            probs = probabilities.get(photo.image_id, {}).get(claim.tag)
            if probs is None:
                missing.add(photo.name)
                continue
            p = min(1.0, sum(probs.get(v, 0.0) for v in accepted))
            pf = min(1.0, sum(probs.get(v, 0.0) for v in family))
            score = 1.0 - (p + pf) / 2
            if worst is None or score > worst[0]:
                worst = (score, p, pf, n, probs)
        if worst is None:
            entry["note"] = "no photo has a prediction for this tag; not compared"
            continue
        score, p, pf, n, probs = worst
        entry.update(probability=round(p, 4), compared=True, photo=n)
        if families is not None and family != accepted:
            entry.update(family=sorted({f for v in accepted if (f := families.family(claim.tag, v))}))
            entry.update(family_probability=round(pf, 4))
        scores.append(score)
        top, top_p = max(probs.items(), key=lambda kv: kv[1])
        if top not in accepted:
            photo = "photo" if len(photos) == 1 else f"photo {n + 1}"
            reasons.append(f"{_said(claim, accepted)} · {photo} looks like {top} ({top_p:.2f})")
    for amb in reading.ambiguous:
        reasons.append(amb.describe())
    predictions = []
    for photo in photos:
        tags = probabilities.get(photo.image_id, {})
        predictions.append(
            {
                "image_id": photo.image_id,
                "name": photo.name,
                "tags": {
                    tag: {
                        "value": max(probs, key=probs.__getitem__),
                        "confidence": round(max(probs.values()), 4),
                        "top": [[v, round(p, 4)] for v, p in sorted(probs.items(), key=lambda kv: -kv[1])[:3]],
                    }
                    for tag, probs in tags.items()
                    if probs
                },
            }
        )
        if not tags:
            missing.add(photo.name)
    compared = [c for c in claims_out if c["compared"]]
    if missing:
        reasons.append(f"no prediction from this model version for {', '.join(sorted(missing))}")
    if not compared:
        status = "not checked" if missing else "nothing to compare"
    else:
        status = "partly checked" if missing else "checked"
    return {
        "mismatch_score": round(max(scores), 4) if scores else None,
        "status": status,
        "claims": claims_out,
        "predictions": predictions,
        "reasons": reasons,
        "missing_predictions": sorted(missing),
        "ambiguous": [a.as_dict() for a in reading.ambiguous],
        "negated": reading.as_dict()["negated"],
    }


def is_flagged(details: dict[str, Any], threshold: float) -> bool:
    """Flagged: the score reaches the threshold, or the listing names two things it cannot choose between."""
    score = details.get("mismatch_score")
    return (score is not None and score >= threshold) or bool(details.get("ambiguous"))


def known_mismatch(details: dict[str, Any], photos: list[Photo]) -> bool | None:
    """Whether the listing contradicts its photos' stored tags (ground truth), or None when none is stored."""
    known = False
    for claim in details["claims"]:
        if not claim["compared"]:
            continue
        wanted = {normalise_value(v) for v in claim["values"]}
        for photo in photos:
            truth = photo.attributes.get(claim["tag"])
            if truth is None or str(claim["tag"]).startswith("auto_"):
                continue
            known = True
            if normalise_value(str(truth)) not in wanted:
                return True
    return False if known else None


def choose_threshold(
    scores: Sequence[float], truth: Sequence[bool], min_precision: float = MIN_PRECISION
) -> dict[str, Any] | None:
    """The lowest score threshold whose precision is at least ``min_precision`` (the most recall it allows).

    Returns:
        ``{"threshold", "precision", "recall"}``, or None when no threshold reaches the precision.
    """
    pairs = sorted(zip(scores, truth, strict=True), key=lambda p: -p[0])
    positives = sum(truth)
    best, tp, fp = None, 0, 0
    for i, (score, is_mismatch) in enumerate(pairs):
        tp += is_mismatch
        fp += not is_mismatch
        if i + 1 < len(pairs) and pairs[i + 1][0] == score:
            continue  # a threshold takes every listing of its score
        precision = tp / (tp + fp)
        if precision >= min_precision and positives:
            best = {"threshold": round(score, 6), "precision": round(precision, 4), "recall": round(tp / positives, 4)}
    return best


def load_items(session: Session, project_id: int) -> list[tuple[CatalogueItem, list[Photo]]]:
    """The project's listings with their photos, in import order."""
    items = list(
        session.scalars(select(CatalogueItem).where(CatalogueItem.project_id == project_id).order_by(CatalogueItem.id))
    )
    photos: dict[int, list[Photo]] = defaultdict(list)
    rows = session.execute(
        select(CatalogueItemImage.item_id, ImageRow.id, ImageRow.original_name, ImageRow.split, ImageRow.attributes)
        .join(ImageRow, ImageRow.id == CatalogueItemImage.image_id)
        .join(CatalogueItem, CatalogueItem.id == CatalogueItemImage.item_id)
        .where(CatalogueItem.project_id == project_id)
        .order_by(CatalogueItemImage.item_id, CatalogueItemImage.position)
    )
    for item_id, image_id, name, split, attributes in rows:
        photos[item_id].append(Photo(image_id, name, split.value if split else None, dict(attributes or {})))
    return [(item, photos[item.id]) for item in items]


def run_check(
    engine: Engine,
    project_id: int,
    model_version_id: int,
    threshold: float | None = None,
    progress: Any = None,
    vocabulary: Vocabulary | None = None,
    detector_version_id: int | None = None,
    look_alikes: str = "full",
) -> dict[str, Any]:
    """Checks every listing of a project against a tags model version and stores the results.

    Args:
        engine: Database engine.
        project_id: The project.
        model_version_id: A tags model version of the project.
        threshold: Flag at this mismatch score; None: the stored or validation-chosen one.
        progress: Called with (done, total, message).
        vocabulary: Overrides the project's (benchmarks); None: the project's.
        detector_version_id: A detector version whose main garment per photo is added as evidence
            (reasons and ``details["detector"]``; the score is the tags model's alone).
        look_alikes: ``"full"`` (default) or ``"half"``: weigh disagreements inside a family half.

    Returns:
        A summary: counts per status, flagged, the threshold and how it was chosen, listings per second.

    Raises:
        CatalogueCheckError: The version is not a tags model of the project, or the detector
            version not a detector of it.
    """
    if look_alikes not in LOOK_ALIKES:
        raise CatalogueCheckError(f"look_alikes must be one of {', '.join(LOOK_ALIKES)}, not {look_alikes!r}.")
    started = time.perf_counter()
    with session_scope(engine) as session:
        version = tags_version(session, project_id, model_version_id)
        vocabulary = vocabulary or project_vocabulary(session, project_id)
        items = load_items(session, project_id)
        image_ids = sorted({p.image_id for _, photos in items for p in photos})
        probabilities = tag_probabilities(session, model_version_id, image_ids)
        heads = version_heads(version, probabilities)
        rows = [
            (item.id, item.sku, item.title, item.description, dict(item.structured or {}), photos)
            for item, photos in items
        ]
        scoring = f"{SCORING}-{look_alikes}:{vocabulary.fingerprint()}"
        choice = stored_threshold(session, project_id, model_version_id) if threshold is None else None
        if choice is not None and choice.get("scoring") != scoring:
            choice = None  # chosen under another score or vocabulary: its scores meant something else
        garments = None
        if detector_version_id is not None:
            try:
                garments = main_garments(session, project_id, detector_version_id, image_ids)
            except DetectorEvidenceError as exc:
                raise CatalogueCheckError(str(exc)) from exc
    results: list[tuple[int, dict[str, Any], list[Photo]]] = []
    for n, (item_id, sku, title, description, structured, photos) in enumerate(rows, start=1):
        reading = read_listing(vocabulary, title, description, structured)
        details = compare_listing(reading, photos, probabilities, heads, vocabulary if look_alikes == "half" else None)
        if garments is not None:
            add_evidence(details, garments, vocabulary)
        details["sku"] = sku
        results.append((item_id, details, photos))
        if progress is not None and (n % 200 == 0 or n == len(rows)):
            progress(n, len(rows), f"checked {n} of {len(rows)} listings")
    if threshold is not None:
        choice = {"threshold": float(threshold), "source": "given"}
    elif choice is None:
        choice = {**_validation_threshold(results), "scoring": scoring}
        if choice["source"] == "validation":
            with session_scope(engine) as session:
                store_threshold(session, project_id, model_version_id, choice)
    cut = float(choice["threshold"])
    with session_scope(engine) as session:
        session.execute(
            delete(CatalogueResult).where(
                CatalogueResult.model_version_id == model_version_id,
                CatalogueResult.item_id.in_(select(CatalogueItem.id).where(CatalogueItem.project_id == project_id)),
            )
        )
        session.add_all(
            CatalogueResult(
                item_id=item_id,
                model_version_id=model_version_id,
                mismatch_score=details["mismatch_score"],
                flagged=is_flagged(details, cut),
                details=details,
            )
            for item_id, details, _ in results
        )
    statuses = [d["status"] for _, d, _ in results]
    elapsed = time.perf_counter() - started
    return {
        "listings": len(results),
        "flagged": sum(is_flagged(d, cut) for _, d, _ in results),
        **{
            s.replace(" ", "_"): statuses.count(s)
            for s in ("checked", "partly checked", "not checked", "nothing to compare")
        },
        "threshold": choice,
        "look_alikes": look_alikes,
        "seconds": round(elapsed, 3),
        "listings_per_second": round(len(results) / elapsed, 1) if elapsed > 0 else None,
    }


def _validation_threshold(results: list[tuple[int, dict[str, Any], list[Photo]]]) -> dict[str, Any]:
    """The threshold chosen on the validation split's listings whose photos have stored tags."""
    scores, truth = [], []
    for _, details, photos in results:
        if details["mismatch_score"] is None or not photos or any(p.split != Split.VAL.value for p in photos):
            continue
        known = known_mismatch(details, photos)
        if known is not None:
            scores.append(details["mismatch_score"])
            truth.append(known)
    positives = sum(truth)
    base = {"validation_listings": len(scores), "validation_mismatches": positives}
    if positives < MIN_VALIDATION_POSITIVES:
        return {
            "threshold": FALLBACK_THRESHOLD,
            "source": "fallback",
            "note": f"{positives} mismatched listings in the validation split with stored tags (need "
            f"{MIN_VALIDATION_POSITIVES}) to choose a threshold; using {FALLBACK_THRESHOLD}",
            **base,
        }
    chosen = choose_threshold(scores, truth)
    if chosen is None:
        return {
            "threshold": FALLBACK_THRESHOLD,
            "source": "fallback",
            "note": f"no threshold reaches precision {MIN_PRECISION} on the validation listings; using {FALLBACK_THRESHOLD}",
            **base,
        }
    return {**chosen, "source": "validation", "min_precision": MIN_PRECISION, **base}


def catalogue_check_job(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
    """Job handler (``catalogue-check``): :func:`run_check` with progress."""
    threshold = params.get("threshold")
    return run_check(
        ctx.engine,
        int(params["project_id"]),
        int(params["model_version_id"]),
        threshold=None if threshold is None else float(threshold),
        detector_version_id=params.get("detector_version_id"),
        look_alikes=str(params.get("look_alikes") or "full"),
        progress=lambda done, total, message: ctx.progress(done, total, message),
    )


def stored_results(session: Session, project_id: int, model_version_id: int) -> list[dict[str, Any]]:
    """Per listing, the stored check against a version: what ``catalogue check`` prints."""
    rows = session.execute(
        select(CatalogueItem.sku, CatalogueResult.mismatch_score, CatalogueResult.flagged, CatalogueResult.details)
        .join(CatalogueItem, CatalogueItem.id == CatalogueResult.item_id)
        .where(CatalogueItem.project_id == project_id, CatalogueResult.model_version_id == model_version_id)
        .order_by(CatalogueResult.mismatch_score.desc().nulls_last(), CatalogueItem.sku)
    )
    return [
        {
            "sku": sku,
            "mismatch_score": score,
            "flagged": flagged,
            "status": details.get("status"),
            "claims": details.get("claims", []),
            "predictions": details.get("predictions", []),
            "reasons": details.get("reasons", []),
            "missing_predictions": details.get("missing_predictions", []),
            **({"detector": details["detector"]} if "detector" in details else {}),
        }
        for sku, score, flagged, details in rows
    ]
