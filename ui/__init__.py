"""Reusable Streamlit widgets (``*_ui()`` functions that draw and return values)."""
