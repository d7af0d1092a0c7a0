"""Tagrack domain logic. Never imports Streamlit: everything here also runs headless
through ``python -m core``."""
