"""Catalogue: does the seller's photo match the seller's words? Flagged listings, worst first, decided by key.

Import a catalogue (CSV + photos), check it against a tags model version's stored predictions
(a background job), then go through the flagged listings: description wrong (D), photo wrong
(P), model wrong (M: the listing's claims become the photos' tags), fine (F), skip (K).
"""

from __future__ import annotations

import streamlit as st

from core.catalogue.decisions import DecisionError, decide, decision_counts, export_csv, queue
from core.catalogue.listings import listing_count, version_tags
from db.engine import session_scope
from db.models import JobStatus, ModelKind
from ui.catalogue_panels import (
    counts_ui,
    decision_buttons_ui,
    import_panel_ui,
    import_report_ui,
    listing_ui,
    tags_versions,
    vocabulary_panel_ui,
)
from ui.context import current_user, get_context, require_project
from ui.jobs import JobSnapshot, job_ended_ui, job_progress_ui, start_job

ctx = get_context()
st.title("Catalogue")
project_id = require_project()
who = current_user()
JOB_KEY = f"cat_job_{project_id}"
SKIPPED_KEY = f"cat_skipped_{project_id}"
FLASH_KEY = f"cat_flash_{project_id}"
IMPORT_KEY = f"cat_import_{project_id}"

with session_scope(ctx.engine) as session:
    listings = listing_count(session, project_id)
versions = tags_versions(ctx.engine, project_id)

with st.sidebar:
    version_id = (
        st.selectbox("Tags model version", list(versions), format_func=versions.__getitem__, key="cat_version")
        if versions
        else None
    )
    with session_scope(ctx.engine) as session:
        heads = version_tags(session, version_id) if version_id is not None else []
    tag_filter = st.selectbox("Contradicted on tag", ["any tag", *heads], key="cat_tag")
    min_score = st.slider("Lowest mismatch score", 0.0, 1.0, 0.0, 0.05, key="cat_min_score")
    show_decided = st.checkbox("Show decided listings too", key="cat_decided")

entries: list = []
if version_id is not None:
    with session_scope(ctx.engine) as session:
        entries = queue(
            session,
            project_id,
            version_id,
            tag=None if tag_filter == "any tag" else tag_filter,
            min_score=min_score,
            include_decided=show_decided,
        )
        counts = decision_counts(session, project_id)
    skipped = st.session_state.setdefault(SKIPPED_KEY, set())
    todo = [e for e in entries if e["item_id"] not in skipped] or entries
    if FLASH_KEY in st.session_state:
        st.success(st.session_state[FLASH_KEY])
    counts_ui(counts, len(entries))
    if todo:
        entry = todo[0]
        left, right = st.columns([4, 1])
        with left:
            listing_ui(ctx.engine, ctx.settings, entry, f"{len(todo)} to review")
        with right:
            if entry["decision"]:
                st.caption(f"Decided: {entry['decision'].replace('_', ' ')}")
            pressed = decision_buttons_ui()
        if pressed == "skip":
            skipped.add(entry["item_id"])
            st.rerun()
        elif pressed is not None:
            try:
                with session_scope(ctx.engine) as session:
                    row = decide(session, entry["item_id"], pressed, version_id, who)
                    stored = row.details.get("ground_truth") or {}
                    skipped_notes = row.details.get("skipped") or []
            except DecisionError as exc:
                st.error(str(exc))
            else:
                message = f"{entry['sku']}: {pressed.replace('_', ' ')}"
                if stored:
                    message += " · stored as the photos' tags: " + ", ".join(f"{k} = {v}" for k, v in stored.items())
                if skipped_notes:
                    message += " · not stored: " + "; ".join(skipped_notes)
                st.session_state[FLASH_KEY] = message
                st.rerun()
    elif listings:
        st.info("No flagged listing to review for this model version and these filters.")
    with session_scope(ctx.engine) as session:
        exported = export_csv(session, project_id, version_id)
    st.download_button(
        "Export flagged and decided listings (CSV)", exported, file_name="catalogue-check.csv", mime="text/csv"
    )


def check_done_ui(job: JobSnapshot) -> None:
    """The finished check's summary, the photos it could not check named as a count."""
    result = job.result
    if job.status is not JobStatus.SUCCEEDED or not result:
        job_ended_ui(job, "check")
        return
    threshold = result["threshold"]
    half = " Look-alikes of one family weighed half." if result.get("look_alikes") == "half" else ""
    st.success(
        f"Checked {result['listings']} listings: {result['flagged']} flagged at mismatch score "
        f"{threshold['threshold']:.2f} ({threshold['source']}).{half}"
    )
    unchecked = result["not_checked"] + result["partly_checked"]
    if unchecked:
        st.warning(
            f"{unchecked} listings have photos without a prediction from this model version "
            "(run its prediction over them, then check again)."
        )
    if threshold.get("note"):
        st.caption(threshold["note"])


def import_done_ui(job: JobSnapshot) -> None:
    """The finished import's report (the page reran when it ended, so counts and queue follow it)."""
    if job.status is JobStatus.SUCCEEDED and job.result:
        import_report_ui(job.result)
    else:
        job_ended_ui(job, "catalogue import")


job_progress_ui(
    st.session_state.get(IMPORT_KEY),
    lambda p: f"Importing the catalogue… {p.get('done', 0)} of {p.get('total') or '?'} photos",
    done_ui=import_done_ui,
)
# Both jobs report above the panels: the check's panel folds once the queue fills, and its
# summary must stay in sight when it does.
job_progress_ui(
    st.session_state.get(JOB_KEY),
    lambda p: f"Checking… {p.get('done', 0)} of {p.get('total') or '?'} listings",
    done_ui=check_done_ui,
)
with st.expander("Import a catalogue", expanded=not listings):
    if (import_params := import_panel_ui(ctx.settings, project_id, who)) is not None:
        if (job_id := start_job("catalogue-import", import_params, project_id)) is not None:
            st.session_state[IMPORT_KEY] = job_id
            st.rerun()  # the progress shows above the panels
with st.expander("Check against a tags model", expanded=bool(listings) and not entries):
    if not versions:
        st.info("No tags model yet: train one on the Train page, run its prediction, then check here.")
    else:
        st.caption(f"{listings} listings. The check reads the version's stored predictions of their photos.")
        own = st.checkbox("Set the threshold myself (default: chosen on validation data for precision ≥ 0.8)")
        threshold = st.number_input("Flag at mismatch score", 0.0, 1.0, 0.5, 0.05, disabled=not own)
        detectors = tags_versions(ctx.engine, project_id, ModelKind.DETECTOR)
        detector = st.selectbox(
            "Detector evidence (its main garment per photo, shown beside the reasons)",
            [None, *detectors],
            format_func=lambda v: "none" if v is None else detectors[v],
        )
        half = st.checkbox(
            "Gross mismatches first: weigh look-alikes of one family half (a T-shirt listed as a long-sleeve is "
            "then rarely flagged)",
            help="Families come from the vocabulary (tops, bottoms, footwear…).",
        )
        if st.button("Run the check", type="primary", disabled=not listings):
            params = {
                "project_id": project_id,
                "model_version_id": version_id,
                "threshold": threshold if own else None,
                "detector_version_id": detector,
                "look_alikes": "half" if half else "full",
            }
            if (job_id := start_job("catalogue-check", params, project_id)) is not None:
                st.session_state[JOB_KEY] = job_id
                st.session_state.pop(SKIPPED_KEY, None)
                st.rerun()  # the progress shows above the panels
with st.expander("Vocabulary"):
    vocabulary_panel_ui(ctx.engine, project_id)
