"""Assigned work and the review stage in the pages: Home's people panel, Annotate's queue order and comment."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts.assignment import (
    assign,
    has_assigned_work,
    may_annotate,
    people_progress,
    split_evenly,
    unassign,
)
from core.accounts.review_stage import returned_comment, review_counts, set_stage, stage_on
from core.accounts.roles import ADMIN, ANNOTATOR, action_allowed
from core.accounts.users import AccountError, list_accounts
from core.annotate.queue import TO_DO_STATUSES, QueueViewer
from db.engine import session_scope
from db.models import Image
from ui.auth import SignedIn, require_role
from ui.context import ACCOUNT_KEY, current_user, get_context

_DONE_KEY = "_work_done_message"


def _signed() -> SignedIn | None:
    return st.session_state.get(ACCOUNT_KEY)


def queue_viewer(session: Session, project_id: int) -> QueueViewer | None:
    """This person's assigned-work order for the Annotate queue (see QueueViewer); None when it changes nothing.

    None without sign-in (one person, one order), and in a project where nothing is assigned or
    returned: then every image is in the same group and the queue keeps its plain indexed order.
    """
    signed = _signed()
    if signed is None or not has_assigned_work(session, project_id):
        return None
    return QueueViewer(signed.account_id, signed.username, hide_others=signed.role == ANNOTATOR)


def may_save_ui(image_id: int) -> bool:
    """Refuses (with a message) an annotator's save of an image assigned to someone else."""
    signed = _signed()
    if signed is None or signed.role != ANNOTATOR:
        return True
    with session_scope(get_context().engine) as session:
        ok = may_annotate(session, image_id, signed.account_id)
    if not ok:
        st.error("Not saved: this image is assigned to someone else.")
    return ok


def returned_comment_ui(image_id: int) -> None:
    """The reviewer's comment beside the canvas, for an image returned for fixing."""
    with session_scope(get_context().engine) as session:
        returned = returned_comment(session, image_id)
    if returned is not None:
        comment, reviewer = returned
        st.warning(f"Returned by {reviewer or 'a reviewer'}: {comment}")


def work_ui(project_id: int) -> None:
    """Home's people panel: progress and throughput per person; for admins, assigning work and the review stage."""
    ctx = get_context()
    signed = _signed()
    with session_scope(ctx.engine) as session:
        rows = people_progress(session, project_id)
        stage = stage_on(session, project_id)
        counts = review_counts(session, project_id) if stage else {}
        annotators = [a.username for a in list_accounts(session) if not a.disabled]
        to_do = session.scalars(
            select(Image.id).where(Image.project_id == project_id, Image.status.in_(TO_DO_STATUSES))
        ).all()
    if signed is not None and signed.role == ANNOTATOR:  # own statistics only
        rows = [r for r in rows if r.username == signed.username]
    st.subheader("People")
    if done := st.session_state.pop(_DONE_KEY, None):
        st.success(done)
    if rows:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "person": r.username,
                        "assigned": r.assigned,
                        "assigned done": r.assigned_done,
                        "finished (all)": r.finished,
                        "finished (7 days)": r.finished_week,
                        "per day": r.per_day,
                    }
                    for r in rows
                ]
            ),
            hide_index=True,
            width="stretch",
        )
    else:
        st.caption("No one has finished or been assigned images yet.")
    if stage:
        st.caption(
            f"Review stage on: {counts.get('pending', 0)} waiting for a reviewer, "
            f"{counts.get('returned', 0)} returned, {counts.get('accepted', 0)} accepted."
        )
    role = signed.role if signed is not None else ADMIN
    if not action_allowed(role, "project.assign"):
        return
    with st.expander("Assign work and the review stage"):
        people = st.multiselect("People", annotators, key=f"assign_people_{project_id}")
        c1, c2, c3 = st.columns([2, 3, 2])
        count = c1.number_input("Images each", min_value=1, value=50, step=10, key=f"assign_count_{project_id}")
        name_filter = c2.text_input("Only names containing", key=f"assign_filter_{project_id}")
        st.caption(f"{len(to_do)} images still to do in this project.")
        b1, b2, b3 = st.columns(3)
        if b1.button("Assign", disabled=not people):
            _assign(project_id, people, int(count), name_filter)
        if b2.button("Split the unassigned evenly", disabled=not people):
            _change(lambda s: split_evenly(s, project_id, people, by=current_user()), "Split: {}.")
        if b3.button("Take back unfinished", disabled=not people):
            _change(
                lambda s: {p: unassign(s, project_id, p, by=current_user()) for p in people},
                "Took back unfinished: {}.",
            )
        new_stage = c3.toggle(
            "Review stage",
            value=stage,
            key=f"review_stage_{project_id}",
            help="Finished images wait for a reviewer; only accepted ones are exported and trained on.",
        )
        if new_stage != stage:
            _change(
                lambda s: set_stage(s, project_id, new_stage, by=current_user()),
                "Review stage switched; {} finished images accepted.",
            )


def _assign(project_id: int, people: list[str], count: int, name_filter: str) -> None:
    def run(session: Session) -> dict[str, int]:
        ids = None
        if name_filter.strip():
            ids = list(
                session.scalars(
                    select(Image.id).where(
                        Image.project_id == project_id, Image.original_name.contains(name_filter.strip())
                    )
                )
            )
        return {p: assign(session, project_id, p, count, image_ids=ids, by=current_user()) for p in people}

    _change(run, "Assigned: {}.")


def _change(fn, message: str) -> None:  # type: ignore[no-untyped-def]
    """Runs one assignment change after the role check; shows its refusal instead of failing."""
    require_role("project.assign")
    try:
        with session_scope(get_context().engine) as session:
            out = fn(session)
    except AccountError as exc:
        st.error(str(exc))
        return
    # Rerun so the People table above shows the change; the message waits for that run.
    st.session_state[_DONE_KEY] = message.format(out)
    st.rerun()
