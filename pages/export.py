"""Export: the project's ground truth in any format with a writer (TFRecord, Pascal VOC, ...), made by a background job."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core.dataset.labels import tagged_image_count
from core.formats import registry
from core.project.splits import exportable_per_split
from db.engine import session_scope
from db.models import JobStatus
from ui.context import current_user, get_context, require_project
from ui.file_route import offer
from ui.jobs import JobSnapshot, job_ended_ui, job_progress_ui, start_job

# Where the server's file route is missing (ui/file_route.py), a download would go through
# Streamlit's media store, which holds the whole file in memory: only up to this size.
MAX_BROWSER_DOWNLOAD = 200 * 1024**2

FORMATS = {name: spec.export_description for name, spec in registry.writers().items()}

ctx = get_context()
st.title("Export")
project_id = require_project()
JOB_KEY = f"export_job_{project_id}"

with session_scope(ctx.engine) as session:
    per_split = exportable_per_split(session, project_id)
    tagged = tagged_image_count(session, project_id)
counts = {(s.value if s else "not yet assigned"): n for s, n in per_split.items()}
total = sum(counts.values())
st.caption(
    f"{total} ground-truth images (status done or no objects) will be exported; new, in-progress and skipped "
    "images are not. Images without a split get one now (stratified by label, seeded) and keep it for good, "
    "so the test set stays the same across exports and trainings."
    + (
        f" tags.csv and folder per class take the {tagged} images with stored tags, whatever their status."
        if tagged
        else ""
    )
)
if counts:
    st.dataframe(pd.DataFrame({"split": list(counts), "images": list(counts.values())}), hide_index=True)


def export_form_ui() -> dict | None:
    """The export options; returns the job parameters when the user asks for an export."""
    with st.form("export_options"):
        fmt = st.radio("Format", list(FORMATS), format_func=FORMATS.__getitem__, key="export_format")
        c1, c2, c3, c4 = st.columns(4)
        train = c1.number_input("Train share", 0.0, 1.0, 0.8, 0.05)
        val = c2.number_input("Validation share", 0.0, 1.0, 0.1, 0.05)
        test = c3.number_input("Test share", 0.0, 1.0, 0.1, 0.05)
        seed = c4.number_input("Seed", 0, 2**31 - 1, 0, 1)
        shards = st.number_input("TFRecord shards per split (0 = one per 1,000 images)", 0, 1024, 0, 1)
        go = st.form_submit_button("Export", type="primary", disabled=total == 0 and tagged == 0)
    if not go:
        return None
    if abs(train + val + test - 1.0) > 1e-6:
        st.error(f"The shares must add up to 1 (they add up to {train + val + test:g}).")
        return None
    return {
        "project_id": project_id,
        "format": fmt,
        "fractions": [train, val, test],
        "seed": int(seed),
        "num_shards": int(shards) or None,
        "who": current_user(),
    }


params = export_form_ui()
if params is not None and (job_id := start_job("export", params, project_id)) is not None:
    st.session_state[JOB_KEY] = job_id


def _download_url(job_id: int, path: Path) -> str | None:
    """One download link per finished job and session (not a new token on every rerun)."""
    key = f"export_url_{job_id}"
    if key not in st.session_state:
        st.session_state[key] = offer(path, current_user())
    return st.session_state[key]


def export_result_ui(job_id: int, job: JobSnapshot) -> None:
    """The finished export: summary and the download."""
    result = job.result
    if job.status is JobStatus.SUCCEEDED and result:
        path = Path(result["path"])
        st.success(
            f"Exported {result['images']} images and {result['boxes']} boxes as {result['format']} "
            f"({result['bytes'] / 1e6:.1f} MB): train {result['splits']['train']}, val {result['splits']['val']}, "
            f"test {result['splits']['test']}."
        )
        if not path.is_file():
            st.warning(f"The export file {path} is gone from the server.")
        elif url := _download_url(job_id, path):
            # Served from disk 64 KiB at a time by the server's file route (ui/file_route.py).
            st.link_button("Download the export", url, type="primary", icon=":material/download:")
        elif path.stat().st_size <= MAX_BROWSER_DOWNLOAD:
            # No file route here (AppTest): a callable, read only when the button is clicked.
            st.download_button(
                "Download the export",
                data=path.read_bytes,
                file_name=path.name,
                mime="application/zip",
                type="primary",
                icon=":material/download:",
                key=f"download_{job_id}",
                on_click="ignore",
            )
        else:
            st.info(
                f"The export is {path.stat().st_size / 1e9:.1f} GB, too large to pass through the server's memory. "
                f"It is on the server at `{path}`; for big datasets run `python -m core export FORMAT OUT` next "
                "to the data instead."
            )
        st.caption(f"On the server: `{path}`")
    else:
        job_ended_ui(job, "export")


current_job = st.session_state.get(JOB_KEY)
# When the job ends the page reruns: the split table above changes too, and the finished
# page no longer polls, so the download button is not redrawn under the user's click.
job_progress_ui(
    current_job,
    lambda p: f"Exporting… {p.get('done', 0) or 0} of {p.get('total') or '?'} images",
    done_ui=lambda job: export_result_ui(current_job, job),
)
