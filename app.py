"""Tagrack: tag clothing photos with boxes, train a detector, review what it is unsure about.

Run with ``streamlit run app.py`` (optionally ``-- --db URL --data-dir DIR``). This file
is the entry point: it opens the database (creating the demo project on first start),
draws the sidebar and routes to the pages listed below.
"""

import streamlit as st

from ui.auth import account_ui, gate, menu_pages, menu_role, nav_position, project_role, require_page
from ui.context import get_context
from ui.project import project_picker_ui

# An emoji, not a ":material/…:" icon: Streamlit draws an emoji favicon in the page (a data: URL)
# but fetches a material one from fonts.gstatic.com, and nothing may call out unasked.
st.set_page_config(page_title="Tagrack", page_icon="👕", layout="wide")

# (file, title, icon); Home is the default page.
PAGES = [
    ("pages/home.py", "Home", ":material/home:"),
    ("pages/annotate.py", "Annotate", ":material/crop_free:"),
    ("pages/review.py", "Review", ":material/fact_check:"),
    ("pages/review_tags.py", "Review tags", ":material/sell:"),
    ("pages/check_work.py", "Check work", ":material/rule:"),
    ("pages/upload.py", "Add images", ":material/add_photo_alternate:"),
    ("pages/import_annotations.py", "Import annotations", ":material/upload_file:"),
    ("pages/export.py", "Export", ":material/download:"),
    ("pages/train.py", "Train", ":material/model_training:"),
    ("pages/evaluate.py", "Evaluate", ":material/analytics:"),
    ("pages/catalogue.py", "Catalogue", ":material/storefront:"),
    ("pages/users.py", "Users", ":material/group:"),
    ("pages/audit.py", "Audit trail", ":material/policy:"),
]

# Navigation first: until st.navigation runs, Streamlit would show the pages/ folder's
# files as a default menu while the first start prepares the database.
# Without a session the menu is hidden and gate() draws only the sign-in form: no page runs
# and no project name is sent before the server has checked the session (ui/auth.py).
# The menu lists the pages the role known from the previous run may open (menu_pages); the
# others stay reachable by address, where require_page refuses them on the server.
# expanded: with 13 pages Streamlit would hide the last ones behind 'View more'.
shown = menu_role()
page = st.navigation(menu_pages(PAGES, shown), position=nav_position(), expanded=True)
get_context()
signed_in = gate()
project_picker_ui()
account_ui(signed_in)
signed = project_role()
if signed.role != shown:
    st.rerun()  # signed in, or another project with another role: draw the menu for this role
require_page(page, signed)
page.run()
