"""The Import page's image-labels section: a labels CSV (with its images) or a class-folder zip, run as a job."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from core.settings import Settings
from db.models import JobStatus
from ui.jobs import JobSnapshot, job_ended_ui


def labels_form_ui(settings: Settings, project_id: int, who: str | None) -> dict[str, Any] | None:
    """The labels import form; returns the import-labels job's parameters when the user starts one."""
    st.caption(
        "A CSV `image,label` (the category), `image,tag=value,...`, or with a header `image,label,colour,...` "
        "(quote a value holding a comma); images are found by name in the project, or in the images you give "
        "with it. Or a zip of class folders (`Shoes/a.jpg`), as Keras' image_dataset_from_directory reads. "
        "Bad rows are reported and the rest come in; tags and values the project lacks are added unless refused."
    )
    with st.form("import_labels", clear_on_submit=True):
        files = st.file_uploader(
            "Labels CSV (and a zip or files of its images), or a zip of class folders",
            type=["csv", "txt", "zip", "jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"],
            accept_multiple_files=True,
        )
        c1, c2 = st.columns(2)
        server_path = c1.text_input("…or a labels file or class-folder tree on the server")
        server_images = c2.text_input("Its images on the server (folder or zip), for a CSV")
        c3, c4 = st.columns(2)
        add_values = c3.checkbox("Add tags and values the project does not have yet", value=True)
        ignore = c4.text_input("CSV columns to leave out", placeholder="e.g. sender")
        go = st.form_submit_button("Import labels", type="primary")
    if not go:
        return None
    params: dict[str, Any] = {
        "project_id": project_id,
        "add_values": add_values,
        "ignore_columns": [c.strip() for c in ignore.split(",") if c.strip()],
        "who": who,
    }
    if server_path.strip():
        for key, value in (("path", server_path.strip()), ("images", server_images.strip())):
            if value and not Path(value).exists():
                st.error(f"{value} does not exist on the server.")
                return None
            if value:
                params[key] = value
        return params
    if not files:
        st.warning("Choose files or give a server path.")
        return None
    staging = settings.jobs_dir / "uploads" / uuid.uuid4().hex
    (staging / "images").mkdir(parents=True)
    params["cleanup"] = [str(staging)]
    saved = []
    for f in files:
        name = Path(f.name.replace("\\", "/")).name or "upload"
        is_image = Path(name).suffix.lower() not in (".csv", ".txt", ".zip")
        target = staging / "images" / name if is_image else staging / name
        target.write_bytes(f.getvalue())
        saved.append(target)
    csvs = [p for p in saved if p.suffix.lower() in (".csv", ".txt")]
    zips = [p for p in saved if p.suffix.lower() == ".zip"]
    if csvs:
        params["path"] = str(csvs[0])
        if zips:
            params["images"] = str(zips[0])
        elif any(p.parent.name == "images" for p in saved):
            params["images"] = str(staging / "images")
    elif len(zips) == 1:
        params["path"] = str(zips[0])
    else:
        st.error("Upload one labels CSV (with its images, if any), or one zip of class folders.")
        return None
    return params


def labels_result_ui(job: JobSnapshot) -> None:
    """The finished labels import: counts, what joined the schema, and every row with a problem or note."""
    result = job.result
    if job.status is not JobStatus.SUCCEEDED or not result:
        job_ended_ui(job, "labels import")
        return
    st.success(
        f"{result['imported']} new images tagged and {result['updated']} existing images tagged; "
        f"{result['duplicate']} already so (nothing added); {result['failed']} failed; {result['skipped']} skipped."
        + (f" Added to the schema: {', '.join(result['labels_added'])}." if result["labels_added"] else "")
    )
    notes = [r for r in result["records"] if r["outcome"] not in ("imported", "updated") or r["message"]]
    if notes:
        st.dataframe(pd.DataFrame(notes)[["source", "outcome", "message"]], hide_index=True, width="stretch")
