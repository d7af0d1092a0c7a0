"""Train page: "Download for deployment" of one model version (SavedModel, TFLite, ONNX zips and their checks)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from core.model.export.formats import FORMATS
from core.model.export.job import JOB_KIND, export_params, exports_of, zip_path
from core.settings import Settings
from db.engine import session_scope
from db.models import JobStatus
from ui.jobs import job_ended_ui, job_progress_ui, start_job


def _opener(path: Path) -> Callable[[], BinaryIO]:
    # Streamlit calls this only when the button is pressed and streams the file from there:
    # a page showing five exports never reads their zips.
    return lambda: open(path, "rb")  # noqa: SIM115 - Streamlit reads and closes it


def check_text(check: dict[str, Any]) -> str:
    """One line of the check's figures, as shown beside the download."""
    if not check:
        return "not checked"
    mark = "✓" if check.get("passed") else "✗ outside the bound"
    return (
        f"{mark} mAP@0.5 {check['map50_export']:.3f} vs Keras {check['map50_keras']:.3f} "
        f"({check['map50_delta']:+.3f}, bound {check['map50_bound']}); matched IoU {check['matched_iou']}; "
        f"top class agrees on {check['top_class_agreement']:.0%} of {check['images']} test images"
    )


def deployment_ui(engine: Engine, settings: Settings, project_id: int, version_id: int) -> None:
    """Exports of a model version with their checks and downloads, and a button to make one."""
    st.subheader(f"Download for deployment: model version #{version_id}")
    key = f"export_model_job_{version_id}"
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    fmt = c1.selectbox(
        "Format", list(FORMATS), format_func=lambda f: FORMATS[f].title, key=f"export_model_format_{version_id}"
    )
    if c2.button("Export and check", key=f"export_model_start_{version_id}"):
        job_id = start_job(JOB_KIND, export_params(version_id, fmt), project_id)
        if job_id is not None:
            st.session_state[key] = job_id
    job_progress_ui(
        st.session_state.get(key),
        text=lambda p: p.get("message") or "exporting",
        done_ui=lambda job: None if job.status is JobStatus.SUCCEEDED else job_ended_ui(job, "export"),
    )
    with session_scope(engine) as session:
        rows = [
            (r.format, r.size_bytes, r.check_result, zip_path(settings, r), r.created_at)
            for r in exports_of(session, version_id)
        ]
    if not rows:
        st.caption(
            "No export yet. Each export is a zip with the model, labels.txt, label_map.pbtxt, a README and an "
            "example script, checked against the Keras model on the project's test split."
        )
        return
    for fmt_name, size, check, path, created in rows:
        a, b, c = st.columns([2, 6, 1], vertical_alignment="center")
        a.markdown(f"**{FORMATS[fmt_name].title}**  \n{size / 1e6:.1f} MB, {created:%Y-%m-%d %H:%M} UTC")
        b.caption(check_text(check))
        if path.exists():
            c.download_button(
                "Download",
                data=_opener(path),
                file_name=path.name,
                mime="application/zip",
                on_click="ignore",
                key=f"export_model_download_{version_id}_{fmt_name}",
            )
        else:
            c.caption("zip missing")
    with st.expander("Check figures"):
        st.dataframe(pd.DataFrame([{"format": f, **ch} for f, _, ch, _, _ in rows]), hide_index=True)
