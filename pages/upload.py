"""Add images: upload files or zips from the browser; the import runs as a background job."""

import uuid

import pandas as pd
import streamlit as st

from core.project.ingest import IMAGE_EXTENSIONS
from db.models import JobStatus
from ui.context import current_user, get_context, require_project
from ui.jobs import JobSnapshot, job_ended_ui, job_progress_ui, start_job

ctx = get_context()
st.title("Add images")
project_id = require_project()

st.caption(
    "JPEG, PNG, GIF, BMP, TIFF or WebP files, or zip archives of them. Every file is decoded and checked; "
    "a bad file is reported and the rest still come in. The same picture is never stored twice."
)
JOB_KEY = f"upload_job_{project_id}"
with st.form("upload", clear_on_submit=True):
    files = st.file_uploader(
        "Images or zip archives",
        type=sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS | {".zip"}),
        accept_multiple_files=True,
    )
    submitted = st.form_submit_button("Import", type="primary")
if submitted:
    if not files:
        st.warning("Choose some files first.")
    else:
        staging = ctx.settings.jobs_dir / "uploads" / uuid.uuid4().hex
        staging.mkdir(parents=True)
        for i, f in enumerate(files):
            # Prefix keeps two uploads with the same name apart; ingest reports the clash.
            name = f.name.replace("/", "_").replace("\\", "_")
            (staging / f"{i:05d}" / name).parent.mkdir()
            (staging / f"{i:05d}" / name).write_bytes(f.getvalue())
        params = {
            "project_id": project_id,
            "paths": [str(p) for p in sorted(staging.iterdir())],
            "cleanup": [str(staging)],
            "who": current_user(),
        }
        if (job_id := start_job("import-images", params, project_id)) is not None:
            st.session_state[JOB_KEY] = job_id


def import_result_ui(job: JobSnapshot) -> None:
    """The finished import: summary and every file with a problem or a note."""
    result = job.result
    if job.status is JobStatus.SUCCEEDED and result:
        parts = [f"Imported {result['imported']} images"]
        if result["duplicate"]:
            parts.append(f"{result['duplicate']} already in the project (not stored twice)")
        if result["failed"]:
            parts.append(f"{result['failed']} failed")
        if result["skipped"]:
            parts.append(f"{result['skipped']} skipped")
        (st.warning if result["failed"] else st.success)("; ".join(parts) + ".")
        problems = [f for f in result["files"] if f["outcome"] != "imported" or f["message"]]
        if problems:
            st.dataframe(pd.DataFrame(problems)[["name", "outcome", "message"]], hide_index=True, width="stretch")
    else:
        job_ended_ui(job, "import")


job_progress_ui(
    st.session_state.get(JOB_KEY),
    lambda p: f"Importing… {p.get('done', 0)} of {p.get('total') or '?'} files",
    done_ui=import_result_ui,
)
