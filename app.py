"""Tagrack: tag clothing photos with boxes, train a detector, review what it is unsure about.

Run with ``streamlit run app.py`` (optionally ``-- --db URL --data-dir DIR``). This file
is the entry point: it opens the database (creating the demo project on first start),
draws the sidebar and routes to the pages listed below.
"""

import streamlit as st

from ui.auth import account_ui, gate, nav_position, require_page
from ui.context import get_context
from ui.project import project_picker_ui

# An emoji, not a ":material/…:" icon: Streamlit draws an emoji favicon in the page (a data: URL)
# but fetches a material one from fonts.gstatic.com, and nothing may call out unasked.
st.set_page_config(page_title="Tagrack", page_icon="👕", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/annotate.py", title="Annotate", icon=":material/crop_free:"),
    st.Page("pages/review.py", title="Review", icon=":material/fact_check:"),
    st.Page("pages/review_tags.py", title="Review tags", icon=":material/sell:"),
    st.Page("pages/check_work.py", title="Check work", icon=":material/rule:"),
    st.Page("pages/upload.py", title="Add images", icon=":material/add_photo_alternate:"),
    st.Page("pages/import_annotations.py", title="Import annotations", icon=":material/upload_file:"),
    st.Page("pages/export.py", title="Export", icon=":material/download:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/evaluate.py", title="Evaluate", icon=":material/analytics:"),
    st.Page("pages/catalogue.py", title="Catalogue", icon=":material/storefront:"),
    st.Page("pages/users.py", title="Users", icon=":material/group:"),
    st.Page("pages/audit.py", title="Audit trail", icon=":material/policy:"),
]

# Navigation first: until st.navigation runs, Streamlit would show the pages/ folder's
# files as a default menu while the first start prepares the database.
# Without a session the menu is hidden and gate() draws only the sign-in form: no page runs
# and no project name is sent before the server has checked the session (ui/auth.py).
# expanded: with 13 pages Streamlit would hide the last ones behind 'View more'.
page = st.navigation(PAGES, position=nav_position(), expanded=True)
get_context()
signed_in = gate()
project_picker_ui()
account_ui(signed_in)
require_page(page)
page.run()
