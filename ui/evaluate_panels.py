"""Widgets of the Evaluate page: tables with a CSV download, and the Altair charts."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from core.project.health import DatasetHealth


def table_ui(df: pd.DataFrame, name: str, key: str, **kwargs: Any) -> None:
    """A dataframe with a 'Download CSV' button under it."""
    st.dataframe(df, hide_index=True, width="stretch", **kwargs)
    st.download_button(
        f"Download {name} (CSV)",
        df.to_csv(index=False).encode(),
        file_name=f"{key}.csv",
        mime="text/csv",
        key=f"csv_{key}",
        icon=":material/download:",
        on_click="ignore",  # a download changes nothing to rerun
    )


def pr_curves_chart(curves: dict[str, dict[str, list[float]]]) -> alt.Chart:
    """Precision-recall curves at IoU 0.5, one line per class (hover shows the score threshold)."""
    rows = [
        {"class": name, "recall": r, "precision": p, "score": s}
        for name, c in curves.items()
        for r, p, s in zip(c["recall"], c["precision"], c["score"], strict=True)
    ]
    df = pd.DataFrame(rows, columns=["class", "recall", "precision", "score"])
    return (
        alt.Chart(df)
        .mark_line(interpolate="step-after", point=False)
        .encode(
            x=alt.X("recall:Q", scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("precision:Q", scale=alt.Scale(domain=[0, 1])),
            color="class:N",
            tooltip=["class", "recall", "precision", "score"],
        )
        .properties(height=340)
        .interactive()
    )


def confusion_chart(matrix: list[list[int]], labels: list[str]) -> alt.Chart:
    """Heatmap of the detection confusion matrix (true class down, predicted across, background last)."""
    names = [*labels, "background"]
    df = pd.DataFrame(
        [
            {"true": names[i], "predicted": names[j], "boxes": n}
            for i, row in enumerate(matrix)
            for j, n in enumerate(row)
        ]
    )
    base = alt.Chart(df).encode(
        x=alt.X("predicted:N", sort=names, title="predicted class"),
        y=alt.Y("true:N", sort=names, title="true class"),
    )
    heat = base.mark_rect().encode(
        color=alt.Color("boxes:Q", scale=alt.Scale(scheme="blues")), tooltip=["true", "predicted", "boxes"]
    )
    text = base.mark_text(fontSize=11).encode(
        text=alt.condition(alt.datum.boxes > 0, "boxes:Q", alt.value("")),
        color=alt.condition(alt.datum.boxes > df["boxes"].max() / 2, alt.value("white"), alt.value("black")),
    )
    return (heat + text).properties(height=36 * len(names) + 40)


def bar_chart(df: pd.DataFrame, x: str, y: str, color: str | None = None, height: int = 260) -> alt.Chart:
    """A bar chart of ``y`` per ``x`` (stacked by ``color``).

    Column names may hold dots or brackets ("AP@0.5"): Vega-Lite would read those as nested
    fields, so the chart gets plain names and keeps the originals as axis titles.
    """
    names = {x: "x", y: "y", **({color: "c"} if color else {})}
    df = df[list(names)].rename(columns=names)
    enc: dict[str, Any] = {"x": alt.X("x:N", sort=None, title=x), "y": alt.Y("y:Q", title=y)}
    tooltip = [alt.Tooltip("x:N", title=x), alt.Tooltip("y:Q", title=y)]
    if color:
        enc["color"] = alt.Color("c:N", title=color)
        tooltip.append(alt.Tooltip("c:N", title=color))
    enc["tooltip"] = tooltip
    return alt.Chart(df).mark_bar().encode(**enc).properties(height=height)


def distribution_chart(geometry: pd.DataFrame, column: str, title: str, log: bool = False) -> alt.Chart:
    """Box plot of a box-geometry column per class: whiskers min-max, box 25-75 %, tick at the median.

    The quantiles are computed here and only they go to the browser (Altair would otherwise
    embed every box in the chart: 60,000 rows on a big project).
    """
    q = geometry.groupby("label")[column].quantile([0.0, 0.25, 0.5, 0.75, 1.0]).unstack()
    q.columns = ["min", "q25", "median", "q75", "max"]
    q = q.reset_index()
    scale = alt.Scale(type="log") if log else alt.Scale(zero=False)
    base = alt.Chart(q).encode(x=alt.X("label:N", title="class"), color=alt.Color("label:N", legend=None))
    tooltip = ["label", "min", "q25", "median", "q75", "max"]
    whisker = base.mark_rule().encode(y=alt.Y("min:Q", title=title, scale=scale), y2="max:Q", tooltip=tooltip)
    box = base.mark_bar(size=18).encode(y="q25:Q", y2="q75:Q", tooltip=tooltip)
    median = base.mark_tick(color="white", size=18, thickness=2).encode(y="median:Q")
    return (whisker + box + median).properties(height=260)


def health_charts(health: DatasetHealth) -> dict[str, Any]:
    """The Dataset health tab's charts as Vega-Lite specs, and its geometry summary table.

    Built once per shared computation (ui/shared_cache.py): making the Altair charts (schema
    validation) cost more than half a second of every Evaluate run, whatever the project's size.
    """
    per_class = health.per_class.reset_index()
    long = per_class.melt(
        id_vars="label",
        value_vars=["train boxes", "val boxes", "test boxes", "unassigned boxes"],
        var_name="split",
        value_name="count",
    )
    out: dict[str, Any] = {
        "per_class": bar_chart(long, "label", "count", color="split").to_dict(),
        "status": bar_chart(health.by_status, "status", "images").to_dict(),
    }
    if not health.box_geometry.empty:
        out["area"] = distribution_chart(health.box_geometry, "relative_area", "box area / image area", log=True)
        out["area"] = out["area"].to_dict()
        out["aspect"] = distribution_chart(health.box_geometry, "aspect", "aspect (width / height)", log=True).to_dict()
        summary = (
            health.box_geometry.groupby("label")[["width", "height", "relative_area", "aspect"]]
            .describe(percentiles=[0.1, 0.5, 0.9])
            .round(3)
        )
        summary.columns = [f"{a} {b}" for a, b in summary.columns]
        out["geometry_summary"] = summary.reset_index()
    if not health.throughput.empty:
        out["throughput"] = bar_chart(health.throughput, "day", "boxes", color="who").to_dict()
    return out


def dataset_health_ui(health: DatasetHealth, charts: dict[str, Any] | None = None) -> None:
    """The Dataset health tab: warnings, boxes per class and split, box geometry, status and throughput."""
    charts = charts if charts is not None else health_charts(health)
    for w in health.warnings:
        st.warning(w)
    st.subheader("Boxes and images per class and split")
    st.vega_lite_chart(charts["per_class"], width="stretch")
    table_ui(health.per_class.reset_index(), "boxes per class", "boxes_per_class")

    st.subheader("Box size and shape per class")
    if "area" not in charts:
        st.caption("No boxes yet.")
    else:
        c1, c2 = st.columns(2)
        c1.vega_lite_chart(charts["area"], width="stretch")
        c2.vega_lite_chart(charts["aspect"], width="stretch")
        table_ui(charts["geometry_summary"], "box geometry per class", "box_geometry")

    c1, c2 = st.columns(2)
    with c1:
        st.subheader("Images per status")
        st.vega_lite_chart(charts["status"], width="stretch")
        table_ui(health.by_status, "images per status", "images_per_status")
    with c2:
        st.subheader("Annotation throughput")
        if "throughput" not in charts:
            st.caption("No boxes yet.")
        else:
            st.vega_lite_chart(charts["throughput"], width="stretch")
            table_ui(health.throughput, "boxes per person per day", "throughput")


def versions_table_ui(done: list[tuple[int, str, dict[str, Any]]], threshold: str) -> None:
    """The evaluated model versions side by side at one score threshold, with a CSV download."""
    rows = []
    for i, name, r in done:
        at = r["at"].get(threshold) or {}
        p = [v for v in (at.get("precision") or {}).values() if v is not None]
        rc = [v for v in (at.get("recall") or {}).values() if v is not None]
        rows.append(
            {
                "id": i,
                "model version": name,
                "COCO mAP@0.5": r["map_50"],
                "COCO mAP@[.5:.95]": r["map_50_95"],
                f"mean precision @{threshold}": sum(p) / len(p) if p else None,
                f"mean recall @{threshold}": sum(rc) / len(rc) if rc else None,
                "test images": r["images"],
                "test boxes": r["ground_truth"],
                "predictions": r["predictions"],
                "evaluated (UTC)": r["evaluated_at"],
            }
        )
    # Short headers and three decimals on screen (the CSV keeps the full names): with the
    # long ones the ten columns ran off the right edge of a laptop window.
    table_ui(
        pd.DataFrame(rows),
        "model versions",
        "model_versions",
        column_config={
            "COCO mAP@0.5": st.column_config.NumberColumn("mAP@0.5", format="%.3f"),
            "COCO mAP@[.5:.95]": st.column_config.NumberColumn("mAP@[.5:.95]", format="%.3f"),
            f"mean precision @{threshold}": st.column_config.NumberColumn(
                f"precision @{threshold}", format="%.3f", help="Mean over the classes"
            ),
            f"mean recall @{threshold}": st.column_config.NumberColumn(
                f"recall @{threshold}", format="%.3f", help="Mean over the classes"
            ),
            "test images": st.column_config.NumberColumn("images"),
            "test boxes": st.column_config.NumberColumn("boxes"),
            "evaluated (UTC)": st.column_config.DatetimeColumn("evaluated (UTC)", format="YYYY-MM-DD HH:mm"),
        },
    )
