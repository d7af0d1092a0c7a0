"""Import annotations: datasets labelled elsewhere (VOC, COCO, ...) and image labels (tags), via background jobs."""

from __future__ import annotations

import uuid
from pathlib import Path

import pandas as pd
import streamlit as st

from core.formats import registry
from db.models import JobStatus
from ui.context import current_user, get_context, require_project
from ui.import_labels_panels import labels_form_ui, labels_result_ui
from ui.jobs import JobSnapshot, job_ended_ui, job_progress_ui, start_job

SPECS = registry.readers()
FORMATS = {name: spec.import_description for name, spec in SPECS.items()}

ctx = get_context()
st.title("Import annotations")
project_id = require_project()
JOB_KEY = f"import_annotations_job_{project_id}"
st.caption(
    "Images come in with their boxes. The same file twice adds nothing; a bad record is reported and the rest "
    "import; boxes past the image edge are clipped and reported. A VOC dataset's fixed split "
    "(ImageSets/Main/train.txt, val.txt, test.txt) is kept; an image already in a split stays there. URLs in "
    "DataTurks files are never downloaded: the images are found by file name in the zip you give."
)


def import_form_ui() -> dict | None:
    """The import options and files; returns job parameters when the user starts an import."""
    fmt = st.radio("Format", list(FORMATS), format_func=FORMATS.__getitem__, key="import_format")
    with st.form("import_annotations", clear_on_submit=True):
        accepted = SPECS[fmt].extensions
        files = st.file_uploader(
            "Files", type=None, accept_multiple_files=True, help=f"Expected: {', '.join(accepted)}"
        )
        server_path = st.text_input(
            "…or a path on the server (folder, zip, .json or .record)", help="For datasets too big to upload."
        )
        add_labels = st.checkbox("Add labels the project does not have yet", value=True)
        go = st.form_submit_button("Import", type="primary")
    if not go:
        return None
    staging = ctx.settings.jobs_dir / "uploads" / uuid.uuid4().hex
    params: dict = {"project_id": project_id, "format": fmt, "add_labels": add_labels, "who": current_user()}
    if server_path.strip():
        params["path"] = server_path.strip()
        if not Path(params["path"]).exists():
            st.error(f"{params['path']} does not exist on the server.")
            return None
        return params
    if not files:
        st.warning("Choose files or give a server path.")
        return None
    staging.mkdir(parents=True)
    params["cleanup"] = [str(staging)]
    saved = []
    for f in files:
        name = Path(f.name.replace("\\", "/")).name or "upload"
        (staging / name).write_bytes(f.getvalue())
        saved.append(staging / name)
    zips = [p for p in saved if p.suffix.lower() == ".zip"]
    others = [p for p in saved if p.suffix.lower() != ".zip"]
    if registry.Option.IMAGES in SPECS[fmt].options:  # the annotation file, and its images apart
        if not others:
            st.error("Upload the annotation .json file too.")
            return None
        params["path"] = str(others[0])
        params["images"] = str(zips[0] if zips else staging)
    elif "zip" in accepted:  # one dataset zip is the dataset; anything else, the folder of uploads
        params["path"] = str(zips[0] if len(saved) == 1 and zips else staging)
    else:
        params["path"] = str(staging)
    return params


params = import_form_ui()
if params is not None and (job_id := start_job("import-annotations", params, project_id)) is not None:
    st.session_state[JOB_KEY] = job_id


def import_result_ui(job: JobSnapshot) -> None:
    """The finished import: summary and every record with a problem or a note."""
    result = job.result
    if job.status is JobStatus.SUCCEEDED and result:
        st.success(
            f"{result['imported']} images imported and {result['updated']} existing images annotated "
            f"({result['boxes']} boxes); {result['duplicate']} already present (nothing added); "
            f"{result['failed']} failed; {result['skipped']} skipped."
            + (f" Labels added: {', '.join(result['labels_added'])}." if result["labels_added"] else "")
            + (f" {splits[:1].upper()}{splits[1:]}." if (splits := result.get("splits_message")) else "")
        )
        if refusals := result.get("refusals_message"):
            st.warning(f"{refusals[:1].upper()}{refusals[1:]}.")
        if matched := result.get("labels_message"):
            st.info(f"{matched[:1].upper()}{matched[1:]}.")
        notes = [r for r in result["records"] if r["outcome"] not in ("imported", "updated") or r["message"]]
        if notes:
            st.dataframe(pd.DataFrame(notes)[["source", "outcome", "message"]], hide_index=True, width="stretch")
    else:
        job_ended_ui(job, "import")


job_progress_ui(
    st.session_state.get(JOB_KEY),
    lambda p: f"Importing… {p.get('done', 0)} records read",
    done_ui=import_result_ui,
)

st.subheader("Image labels (tags)")
LABELS_JOB_KEY = f"import_labels_job_{project_id}"
labels_params = labels_form_ui(ctx.settings, project_id, current_user())
if labels_params is not None and (job_id := start_job("import-labels", labels_params, project_id)) is not None:
    st.session_state[LABELS_JOB_KEY] = job_id
job_progress_ui(
    st.session_state.get(LABELS_JOB_KEY),
    lambda p: f"Importing labels… {p.get('done', 0)} records read",
    done_ui=labels_result_ui,
)
