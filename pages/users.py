"""Users (admins): the accounts, adding people, roles (global or per project), passwords, disabling."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.accounts.passwords import random_password
from core.accounts.roles import ROLES
from core.accounts.users import AccountError, add_account, list_accounts, set_disabled, set_password, set_role
from db.engine import session_scope
from ui.auth import require_role
from ui.context import current_project_id, current_user, get_context

ctx = get_context()
st.title("Users")
require_role("users.manage")

with session_scope(ctx.engine) as session:
    accounts = [
        {
            "user name": a.username,
            "name": a.display_name,
            "role": a.role,
            "e-mail": a.email or "",
            "disabled": a.disabled,
            "last sign-in": a.last_sign_in_at,
        }
        for a in list_accounts(session)
    ]
st.dataframe(pd.DataFrame(accounts), hide_index=True, width="stretch")
names = [a["user name"] for a in accounts]


def _run(action: str, fn, *args, **kwargs) -> bool:  # type: ignore[no-untyped-def]
    """Runs one account change; shows its refusal instead of failing."""
    require_role("users.manage")
    try:
        with session_scope(ctx.engine) as session:
            fn(session, *args, by=current_user(), **kwargs)
    except AccountError as exc:
        st.error(str(exc))
        return False
    st.success(action)
    return True


add_col, change_col = st.columns(2)
with add_col, st.form("add_account", clear_on_submit=True):
    st.subheader("Add a person")
    username = st.text_input("User name")
    display = st.text_input("Display name")
    role = st.selectbox("Role", ROLES, index=ROLES.index("annotator"))
    email = st.text_input("E-mail (for single sign-on; optional)")
    if st.form_submit_button("Add", type="primary"):
        password = random_password()
        if _run(f"Added {username}.", add_account, username, password, role, display, email or None):
            st.info(f"Their first password (shown once; give it to them): `{password}`")

with change_col:
    st.subheader("Change an account")
    who = st.selectbox("Account", names)
    new_role = st.selectbox("New role", ROLES, key="new_role")
    here = st.checkbox("Only in the current project", help="A project role overrides the global role there.")
    b1, b2, b3 = st.columns(3)
    if b1.button("Set role") and who:
        _run(f"{who} is now {new_role}.", set_role, who, new_role, project_id=current_project_id() if here else None)
    if b2.button("Reset password") and who:
        password = random_password()
        if _run(f"New password for {who}.", set_password, who, password):
            st.info(f"Their new password (shown once): `{password}`")
    disabled = next((a["disabled"] for a in accounts if a["user name"] == who), False)
    if b3.button("Enable" if disabled else "Disable") and who:
        _run(f"{who} {'enabled' if disabled else 'disabled'}.", set_disabled, who, not disabled)
