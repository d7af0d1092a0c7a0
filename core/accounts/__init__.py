"""Accounts: people, passwords, roles, sign-in sessions, assigned work, the review stage and the audit trail.

Headless (no Streamlit): the app's gate (``ui/auth.py``) and ``python -m core users`` both call it.
"""
