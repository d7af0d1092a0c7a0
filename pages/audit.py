"""Audit trail (admins): sign-ins and failures, account changes, imports, exports, trainings, deletions, reviews."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from core.accounts.audit import ACTIONS, audit_projects, audit_view
from ui.auth import require_role
from ui.context import get_context

ctx = get_context()
st.title("Audit trail")
require_role("audit.read")

projects = audit_projects(ctx.engine)
c1, c2, c3, c4 = st.columns([3, 2, 2, 2])
actions = c1.multiselect("Actions", ACTIONS)
who = c2.text_input("Who (exact user name)")
project = c3.selectbox("Project", [None, *projects], format_func=lambda p: "all" if p is None else projects[p])
today = dt.date.today()
picked = c4.date_input("Between", (today - dt.timedelta(days=30), today))
# While a range is being picked the widget holds one date: filter on that day alone meanwhile.
since, until = (picked[0], picked[-1]) if isinstance(picked, tuple) and picked else (today, today)
rows, csv_text = audit_view(
    ctx.engine,
    actions=actions,
    who=who.strip() or None,
    project_id=project,
    since=dt.datetime.combine(since, dt.time()),
    until=dt.datetime.combine(until + dt.timedelta(days=1), dt.time()),
)
table = pd.DataFrame(rows, columns=["at", "who", "action", "project_id", "detail"])
st.caption(f"{len(table)} events, newest first (times in UTC).")
st.download_button("Download CSV", csv_text, file_name="tagrack-audit.csv", mime="text/csv")
st.dataframe(table, hide_index=True, width="stretch", height=560)
