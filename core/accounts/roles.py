"""Who may do what: the one table of roles per page and per action.

The app's gate (``ui/auth.py``) looks a page up by its URL path before running it, and pages call
``require_role(action)`` before each action; both read these tables, so changing a role's reach is
an edit here. A page or action missing from the tables is admin-only (refused by default).
"""

from __future__ import annotations

ADMIN = "admin"
REVIEWER = "reviewer"
ANNOTATOR = "annotator"
ROLES = (ADMIN, REVIEWER, ANNOTATOR)

_EVERYONE = frozenset(ROLES)
_REVIEWERS = frozenset({ADMIN, REVIEWER})
_ADMINS = frozenset({ADMIN})

# Page URL path (st.Page's url_path: the file name without .py; "" is the default page) -> roles.
PAGE_ROLES: dict[str, frozenset[str]] = {
    "": _EVERYONE,
    "home": _EVERYONE,
    "annotate": _EVERYONE,
    "review": _REVIEWERS,
    "check_work": _REVIEWERS,
    "evaluate": _REVIEWERS,
    # Pages of issues #15 / #16 (on main by now): reviewing tag predictions, the catalogue check.
    "review_tags": _REVIEWERS,
    "catalogue": _REVIEWERS,
    "upload": _ADMINS,
    "import_annotations": _ADMINS,
    "export": _ADMINS,
    "train": _ADMINS,
    "users": _ADMINS,
    "audit": _ADMINS,
}

# Action -> roles (checked on the server right before the action runs).
ACTION_ROLES: dict[str, frozenset[str]] = {
    "annotate.save": _EVERYONE,
    "review.decide": _REVIEWERS,
    "review.predict": _REVIEWERS,
    "work.review": _REVIEWERS,
    "evaluate.run": _REVIEWERS,
    "project.create": _ADMINS,
    "project.edit": _ADMINS,
    "project.assign": _ADMINS,
    "images.add": _ADMINS,
    "annotations.import": _ADMINS,
    "export.run": _ADMINS,
    "train.run": _ADMINS,
    "users.manage": _ADMINS,
    "audit.read": _ADMINS,
}


# Background job kind -> the action that starts it (ui/jobs.start_job checks it for every page).
JOB_ACTIONS: dict[str, str] = {
    "import-images": "images.add",
    "import-annotations": "annotations.import",
    "export": "export.run",
    "train": "train.run",
    "evaluate": "evaluate.run",
    "predict": "review.predict",
    # Image labels and catalogues come in like annotations; a catalogue check reads stored
    # predictions the way a prediction run makes them (reviewers start both).
    "import-labels": "annotations.import",
    "catalogue-import": "annotations.import",
    "catalogue-check": "review.predict",
    # The tags model's jobs count as the detector's; a deployment export takes a model out like a data export.
    "train-tags": "train.run",
    "predict-tags": "review.predict",
    "evaluate-tags": "evaluate.run",
    "export-model": "export.run",
}


def job_action(kind: str) -> str:
    """The action a job kind counts as (unknown kinds: an admin-only action named after the kind)."""
    return JOB_ACTIONS.get(kind, f"job.{kind}")


def page_allowed(role: str | None, url_path: str) -> bool:
    """Whether ``role`` may open the page at ``url_path`` (unknown pages: admins only)."""
    return role in PAGE_ROLES.get(url_path, _ADMINS)


def action_allowed(role: str | None, action: str) -> bool:
    """Whether ``role`` may do ``action`` (unknown actions: admins only)."""
    return role in ACTION_ROLES.get(action, _ADMINS)
