"""Widgets of the Review tags page: version and filters, one suggestion with its keys, auto-accept, summary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from core.review.tags import TagSuggestion, auto_accept_tags, tag_decision_summary
from db.engine import session_scope
from db.models import ModelVersion


@dataclass(frozen=True)
class TagControls:
    """What the sidebar chose: the tags version and the queue's filters."""

    model_version_id: int
    tags: tuple[str, ...]
    values: tuple[str, ...]


def tag_controls_ui(versions: Sequence[ModelVersion], heads: dict[str, list[str]], project_id: int) -> TagControls:
    """Sidebar: the tags version under review, and which tags and values the queue shows."""
    sb = st.sidebar
    names = {v.id: f"#{v.id} {v.name}" for v in versions}
    version = sb.selectbox(
        "Tags model under review", list(names), format_func=names.__getitem__, key=f"revt_version_{project_id}"
    )
    tags = sb.multiselect("Tags", list(heads), key=f"revt_tags_{project_id}", placeholder="every tag")
    shown = [v for t in (tags or list(heads)) for v in heads.get(t, [])]
    values = sb.multiselect(
        "Suggested values", list(dict.fromkeys(shown)), key=f"revt_values_{project_id}", placeholder="any value"
    )
    return TagControls(int(version), tuple(tags), tuple(values))


@dataclass(frozen=True)
class TagActions:
    """What the reviewer pressed: ``accept``, ``change`` (with ``chosen``) or ``skip``; None for nothing."""

    decision: str | None
    chosen: str | None


def suggestion_ui(s: TagSuggestion, allowed: Sequence[str]) -> TagActions:
    """The suggestion ("suggested · 0.87"), the model's runners-up, and the three single-key decisions."""
    st.markdown(f"#### {s.tag}: **{s.value}**")
    st.caption(f"suggested · {s.confidence:.2f}" + (" · audit sample" if s.audit else ""))
    ranked = sorted(s.probabilities.items(), key=lambda kv: -kv[1])
    others = [v for v in allowed if v != s.value]
    runner_up = next((v for v, _p in ranked if v != s.value and v in others), others[0] if others else None)
    accept = st.button(f"Accept {s.value}", type="primary", shortcut="A", width="stretch")
    chosen = st.selectbox(
        "Change to",
        others,
        index=others.index(runner_up) if runner_up in others else 0,
        key=f"revt_change_{s.image_id}_{s.tag}",
        disabled=not others,
    )
    c1, c2 = st.columns(2)
    change = c1.button("Change", shortcut="E", width="stretch", disabled=not others)
    skip = c2.button("Skip", shortcut="K", width="stretch", help="Can't tell: nothing stored, leaves the queue")
    st.caption("Keys: A accept · E store the 'Change to' value · K skip")
    if ranked:
        st.caption("Model: " + " · ".join(f"{v} {p:.2f}" for v, p in ranked[:4]))
    if accept:
        return TagActions("accept", None)
    if change:
        return TagActions("change", chosen)
    if skip:
        return TagActions("skip", None)
    return TagActions(None, None)


def tag_thresholds_ui(heads: dict[str, list[str]], project_id: int) -> dict[str, dict[str, float]]:
    """A table of tag values and the confidence at or above which each is auto-accepted (empty: never)."""
    frame = pd.DataFrame(
        [{"tag": t, "value": v, "auto-accept at or above": None} for t, vs in heads.items() for v in vs]
    )
    edited = st.data_editor(
        frame,
        hide_index=True,
        disabled=["tag", "value"],
        key=f"revt_thresholds_{project_id}",
        column_config={
            "auto-accept at or above": st.column_config.NumberColumn(min_value=0.0, max_value=1.0, step=0.05)
        },
    )
    out: dict[str, dict[str, float]] = {}
    for _, r in edited.iterrows():
        value = r["auto-accept at or above"]
        if value is not None and not pd.isna(value):
            out.setdefault(str(r["tag"]), {})[str(r["value"])] = float(value)
    return out


def tag_auto_accept_ui(
    engine: Engine, project_id: int, model_version_id: int, heads: dict[str, list[str]]
) -> tuple[str, str] | None:
    """The auto-accept expander; returns (level, message) after a run."""
    with st.expander("Auto-accept confident tags", expanded=False):
        st.caption(
            "Suggestions whose calibrated confidence clears their value's threshold are stored without review; a "
            "random audit sample still comes to people (first in the queue), so the real error rate is measured."
        )
        thresholds = tag_thresholds_ui(heads, project_id)
        audit = st.number_input("Audit share", 0.0, 1.0, 0.05, 0.01, key=f"revt_audit_{project_id}")
        if not st.button("Auto-accept tags now", disabled=not thresholds):
            return None
        with session_scope(engine) as session:
            res = auto_accept_tags(session, project_id, model_version_id, thresholds, audit_fraction=float(audit))
    refused = f" {res.refused} not stored: " + "; ".join(res.problems) if res.refused else ""
    return (
        "warning" if res.refused else "success",
        f"Auto-accepted {res.accepted} tags; {res.audit} sent to people as the audit sample; "
        f"{res.left} left for review.{refused}",
    )


def tag_summary_ui(engine: Engine, project_id: int) -> None:
    """Decisions per tags version and tag: the share accepted unchanged (work saved) and the audit error."""
    with session_scope(engine) as session:
        rows = tag_decision_summary(session, project_id)
    if not rows:
        st.caption("No tag decisions yet.")
        return
    columns = [
        "version",
        "tag",
        "reviewed",
        "accepted_share",
        "accepted",
        "changed",
        "skipped",
        "auto_accepted",
        "audit",
        "audit_error",
    ]
    frame = pd.DataFrame(rows).reindex(columns=columns).fillna({c: 0 for c in columns[4:9]})
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={
            "accepted_share": st.column_config.ProgressColumn("accepted unchanged", min_value=0, max_value=1)
        },
    )
