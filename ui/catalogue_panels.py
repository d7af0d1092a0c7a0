"""Widgets of the Catalogue page: import, check, vocabulary editor, one flagged listing, decisions."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from core.catalogue import listings
from core.catalogue.decisions import DECISIONS
from core.catalogue.settings import is_default_vocabulary, project_vocabulary, save_vocabulary
from core.catalogue.vocabulary import Vocabulary, VocabularyError
from core.project.imagestore import ImageStore
from core.settings import Settings
from db import queries
from db.engine import session_scope
from db.models import ModelKind

# One key per decision, shown on its button (Streamlit binds them while no text field has focus).
DECISION_KEYS = {"description_wrong": "D", "photo_wrong": "P", "model_wrong": "M", "fine": "F"}
DECISION_HELP = {
    "description_wrong": "The seller's words are wrong: exported for the seller",
    "photo_wrong": "The photo shows another item than the listing sells",
    "model_wrong": "The listing is right: its claims become the photos' tags (ground truth for the next model)",
    "fine": "Nothing to do",
}
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>:$])")


def tags_versions(engine: Engine, project_id: int, kind: ModelKind = ModelKind.TAGS) -> dict[int, str]:
    """The project's model versions of a kind (tags by default), newest first: id -> "name (#id)"."""
    with session_scope(engine) as session:
        return listings.tags_versions(session, project_id, kind)


def escape(text: str) -> str:
    """Seller's text shown as itself, not as Markdown."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def highlighted(text: str, field: str, claims: list[dict[str, Any]]) -> str:
    """Markdown of a listing's field: contradicted phrases on red, other claimed phrases on blue."""
    spans = sorted(
        (
            (c["start"], c["end"], c["compared"] and (c["probability"] or 0.0) < 0.5)
            for c in claims
            if c["field"] == field and c["start"] >= 0
        ),
        key=lambda s: (s[0], s[1], not s[2]),  # a contradicted claim wins its span
    )
    out, at = [], 0
    for start, end, contradicted in spans:
        if start < at:
            continue  # one phrase may carry several tags' claims: mark it once
        out.append(escape(text[at:start]))
        colour = "red" if contradicted else "blue"
        out.append(f":{colour}-background[{escape(text[start:end])}]")
        at = end
    out.append(escape(text[at:]))
    return "".join(out)


def import_panel_ui(settings: Settings, project_id: int, who: str) -> dict[str, Any] | None:
    """Upload a catalogue CSV (and a zip of its photos when they are not in the project yet).

    Returns:
        The ``catalogue-import`` job's parameters (the files staged on disk) when the form was sent.
    """
    st.caption(
        "Columns `sku, image, title, description`, optionally tag columns (`category`, `colour`, `sleeve_length`, …). "
        "Several photos per SKU: `a.jpg;b.jpg`. Photos are found among the project's images by name or, from the zip, "
        "by content; a bad row is reported and the rest come in. Re-importing updates listings by SKU."
    )
    with st.form("catalogue_import", clear_on_submit=True):
        csv_file = st.file_uploader("Catalogue CSV", type=["csv"])
        photos = st.file_uploader("Photos (zip), if they are not in the project yet", type=["zip"])
        submitted = st.form_submit_button("Import catalogue")
    if not submitted:
        return None
    if csv_file is None:
        st.warning("Choose a catalogue CSV first.")
        return None
    staging = settings.jobs_dir / "uploads" / uuid.uuid4().hex
    staging.mkdir(parents=True)
    (staging / "catalogue.csv").write_bytes(csv_file.getvalue())
    params: dict[str, Any] = {
        "project_id": project_id,
        "csv_path": str(staging / "catalogue.csv"),
        "images": None,
        "who": who,
        "cleanup": [str(staging)],
    }
    if photos is not None:
        (staging / "photos.zip").write_bytes(photos.getvalue())
        params["images"] = str(staging / "photos.zip")
    return params


def import_report_ui(out: dict[str, Any]) -> None:
    """The last import's outcome: counts, notes about the file, every refused or changed row."""
    text = f"{out['added']} listings added, {out['updated']} updated, {out['unchanged']} unchanged, {out['refused']} refused."
    (st.warning if out["refused"] else st.success)(text)
    for note in out["notes"]:
        st.caption(note)
    if out["rows"]:
        st.dataframe(pd.DataFrame(out["rows"]), hide_index=True, width="stretch")


def vocabulary_panel_ui(engine: Engine, project_id: int) -> None:
    """The project's vocabulary as an editable table, with CSV import and export."""
    with session_scope(engine) as session:
        vocabulary = project_vocabulary(session, project_id)
        default = is_default_vocabulary(session, project_id)
    st.caption(
        ("The shipped English clothing vocabulary. " if default else "This project's own vocabulary. ")
        + "One row per phrase: the tag and value it means. A phrase may mean several values (one row each). "
        + "Family: the value's look-alike group (tops, bottoms, footwear…), used when a check weighs "
        + "look-alikes half."
    )
    rows = [(t, v, p, vocabulary.families.get((t, v), "")) for t, v, p in vocabulary.rows]
    frame = pd.DataFrame(rows, columns=["tag", "value", "phrase", "family"])
    edited = st.data_editor(frame, num_rows="dynamic", hide_index=True, width="stretch", height=260, key="vocab_editor")
    c1, c2, c3 = st.columns(3)
    if c1.button("Save vocabulary", width="stretch"):
        try:
            new = Vocabulary.from_csv(edited[["tag", "value", "phrase", "family"]].fillna("").to_csv(index=False))
        except VocabularyError as exc:
            st.error(str(exc))
        else:
            _save_vocabulary(engine, project_id, new)
    c2.download_button("Export CSV", vocabulary.to_csv(), file_name="vocabulary.csv", mime="text/csv", width="stretch")
    if c3.button("Back to the default", width="stretch", disabled=default):
        _save_vocabulary(engine, project_id, None)
    upload = st.file_uploader(
        "Import a vocabulary CSV (tag,value,phrase, optional family): replaces this one", type=["csv"]
    )
    if upload is not None and st.button("Replace the vocabulary"):
        try:
            new = Vocabulary.from_csv(upload.getvalue().decode("utf-8-sig"))
        except (UnicodeDecodeError, VocabularyError) as exc:
            st.error(f"{upload.name}: {exc}")
            return
        _save_vocabulary(engine, project_id, new)


def _save_vocabulary(engine: Engine, project_id: int, vocabulary: Vocabulary | None) -> None:
    with session_scope(engine) as session:
        save_vocabulary(session, project_id, vocabulary)
    st.toast("Vocabulary saved: run the check again to read the listings with it.")
    st.rerun()


def listing_ui(engine: Engine, settings: Settings, entry: dict[str, Any], position: str) -> None:
    """One flagged listing: its photos beside its words (contradicted phrases marked), the model's top values."""
    details = entry["details"]
    claims = details.get("claims", [])
    score = entry["score"]
    st.markdown(
        f"**{escape(entry['sku'])}** · {position} · mismatch score "
        + (f"**{score:.2f}**" if score is not None else "— (ambiguous)")
    )
    store = ImageStore(settings.data_dir)
    pics, words = st.columns([2, 3])
    with session_scope(engine) as session:
        paths = queries.display_paths(session, (p["image_id"] for p in details.get("predictions", [])))
    for n, pred in enumerate(details.get("predictions", []), start=1):
        with pics:
            if pred["image_id"] in paths:
                st.image(str(store.path(paths[pred["image_id"]])), caption=f"photo {n}: {pred['name']}", width=260)
            tops = [
                f"{tag}: " + ", ".join(f"{v} {p:.2f}" for v, p in info["top"]) for tag, info in pred["tags"].items()
            ]
            st.caption(" · ".join(tops) if tops else "no prediction for this photo")
    with words:
        st.markdown("**Title:** " + highlighted(entry["title"], "title", claims))
        if entry["description"]:
            st.markdown("**Description:** " + highlighted(entry["description"], "description", claims))
        for reason in details.get("reasons", []):
            st.markdown(f":orange[{escape(reason)}]")
        column_claims = [c for c in claims if c["field"] == "column"]
        if column_claims:
            st.caption("Columns: " + ", ".join(f"{c['tag']} = {c['phrase']}" for c in column_claims))


def decision_buttons_ui() -> str | None:
    """The four decisions with their keys, and Skip (K); returns the decision pressed, "skip", or None."""
    # One button a row: two a row cut "Description wrong" to "Descript…" at 1400x900.
    pressed = None
    for decision, label in DECISIONS.items():
        key = DECISION_KEYS[decision]
        if st.button(label, shortcut=key, width="stretch", help=DECISION_HELP[decision], key=f"cat_{decision}"):
            pressed = decision
    if st.button("Skip", shortcut="K", width="stretch", help="Next listing; nothing recorded", key="cat_skip"):
        pressed = pressed or "skip"
    return pressed


def counts_ui(counts: dict[str, int], flagged_left: int) -> None:
    """One line: listings left to review and how many got each decision."""
    parts = [f"{flagged_left} flagged to review"] + [f"{counts[k]} {DECISIONS[k].lower()}" for k in DECISIONS]
    st.caption(" · ".join(parts))
