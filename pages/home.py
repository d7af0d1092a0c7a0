"""Home: pick or create a project, edit its labels and attributes, see counts and activity."""

import altair as alt
import pandas as pd
import streamlit as st

from core.project.projects import (
    ProjectError,
    create_project,
    get_project,
    record_activity,
    set_attribute_schema,
    set_labels,
)
from db.engine import session_scope
from db.queries import project_stats, recent_activity, recent_jobs
from ui.auth import require_role
from ui.context import current_project_id, current_user, get_context, select_project
from ui.project import attribute_schema_ui, label_set_ui
from ui.work_panels import work_ui

ctx = get_context()
st.title("Tagrack")
st.caption("Tag clothing photos with boxes, train a detector, review what it is unsure about.")

with st.expander("New project", expanded=current_project_id() is None):
    with st.form("new_project", clear_on_submit=True):
        name = st.text_input("Project name")
        labels_text = st.text_area(
            "Labels, one per line",
            value="\n".join(
                ["Jackets", "Jeans", "Shirts", "Shoes", "Skirts", "Sunglasses", "Tops", "Trousers", "Tshirts"]
            ),
            height=200,
        )
        if st.form_submit_button("Create project", type="primary"):
            require_role("project.create")
            try:
                with session_scope(ctx.engine) as session:
                    labels = [line for line in labels_text.splitlines() if line.strip()]
                    project = create_project(session, name, labels=labels)
                    record_activity(session, project.id, "project", f"project {project.name!r} created", current_user())
                    new_id = project.id
                select_project(new_id)
                st.success(f"Project {name.strip()!r} created.")
                st.rerun()
            except ProjectError as exc:
                st.error(str(exc))

project_id = current_project_id()
if project_id is None:
    st.info("No project yet: create one above.")
    st.stop()

with session_scope(ctx.engine) as session:
    project = get_project(session, project_id)
    stats = project_stats(session, project_id)
    labels = [(lab.name, lab.colour) for lab in project.labels]
    schema = dict(project.attribute_schema)
    activity = [(a.created_at, a.who or "", a.action, a.message) for a in recent_activity(session, project_id)]
    jobs = [(j.id, j.kind, j.status.value, j.created_at) for j in recent_jobs(session, project_id)]
    project_name = project.name

st.header(project_name)
by_status = stats["images_by_status"]
cols = st.columns(5)
cols[0].metric("Images", stats["images"])
cols[1].metric("Boxes", stats["boxes"])
cols[2].metric("Done", by_status["done"] + by_status["no_objects"])
cols[3].metric("New", by_status["new"])
cols[4].metric("In progress", by_status["in_progress"])

left, right = st.columns(2)
with left:
    st.subheader("Boxes by class")
    if stats["boxes"]:
        colours = dict(labels)
        chart_df = pd.DataFrame(
            {"label": list(stats["boxes_by_label"]), "boxes": list(stats["boxes_by_label"].values())}
        )
        st.altair_chart(
            alt.Chart(chart_df)
            .mark_bar()
            .encode(
                x=alt.X("boxes:Q", title="boxes"),
                y=alt.Y("label:N", sort=list(colours), title=None),
                color=alt.Color(
                    "label:N", scale=alt.Scale(domain=list(colours), range=list(colours.values())), legend=None
                ),
                tooltip=["label", "boxes"],
            )
            .properties(height=320),
            width="stretch",
        )
    else:
        st.caption("No boxes yet.")
with right:
    st.subheader("Images by status")
    st.dataframe(
        pd.DataFrame({"status": list(by_status), "images": list(by_status.values())}),
        hide_index=True,
        width="stretch",
    )
work_ui(project_id)

st.subheader("Label set")
edited_labels = label_set_ui(labels, project_id)

st.subheader("Image attributes")
edited_schema = attribute_schema_ui(schema, project_id)
if st.button("Save labels and attributes"):
    require_role("project.edit")
    try:
        with session_scope(ctx.engine) as session:
            project = get_project(session, project_id)
            rows = edited_labels.dropna(subset=["name"])
            set_labels(
                session,
                project,
                [str(n) for n in rows["name"]],
                colours={
                    str(n): str(c) for n, c in zip(rows["name"], rows["colour"], strict=True) if isinstance(c, str)
                },
                who=current_user(),
            )
            set_attribute_schema(
                session,
                project,
                {
                    str(r.attribute): [v for v in str(r.values).split(",")]
                    for r in edited_schema.dropna(subset=["attribute"]).itertuples()
                },
            )
            record_activity(session, project_id, "project", "label set and attributes edited", current_user())
        st.success("Saved.")
    except ProjectError as exc:
        st.error(str(exc))

st.subheader("Recent activity")
if activity:
    st.dataframe(
        pd.DataFrame(activity, columns=["when (UTC)", "who", "what", "details"]), hide_index=True, width="stretch"
    )
else:
    st.caption("Nothing yet.")
if jobs:
    st.subheader("Recent jobs")
    st.dataframe(
        pd.DataFrame(jobs, columns=["job", "kind", "status", "created (UTC)"]), hide_index=True, width="stretch"
    )
