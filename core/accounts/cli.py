"""``python -m core users add|passwd|role|disable|enable|list``: accounts from the shell.

A password is read from stdin with ``--password-stdin`` (one line; never as an argument, where
``ps`` and the shell history would show it), or generated and printed once.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from sqlalchemy import Engine

from core.accounts.passwords import random_password
from core.accounts.roles import ROLES
from core.accounts.users import AccountError, add_account, list_accounts, set_disabled, set_password, set_role
from core.cli import CliError, _emit, _project_id, command
from core.settings import Settings
from db.engine import session_scope


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["add", "passwd", "role", "disable", "enable", "list"])
    p.add_argument("username", nargs="?", help="the account (all actions but list)")
    p.add_argument("--role", choices=ROLES, help="add: the global role (default annotator); role: the new role")
    p.add_argument("--display-name", default="", help="add: the name shown beside the user name")
    p.add_argument("--email", help="add: the e-mail that single sign-on maps to this account")
    p.add_argument("--sso-only", action="store_true", help="add: no password; signs in only through single sign-on")
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help="add/passwd: read the password from stdin (default: a random one, printed once)",
    )


def audit_shell(engine: Engine, action: str, project_id: int | None, **detail: object) -> None:
    """Audits an import or export run straight from the shell (the pages' go through jobs, audited at create_job)."""
    from core.accounts import audit

    with session_scope(engine) as session:
        audit.record(session, action, _who(), project_id, via="cli", **detail)


def _who() -> str:
    try:
        return f"shell:{getpass.getuser()}"
    except (KeyError, OSError):
        return "shell"


def _password(args: argparse.Namespace) -> tuple[str, bool]:
    """The password to set and whether it was generated (then it is printed once)."""
    if args.password_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise CliError("--password-stdin read an empty line.")
        return line, False
    return random_password(), True


@command("users", "manage accounts: add, passwd, role, disable, enable, list", _configure)
def _users(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    if args.action != "list" and not args.username:
        raise CliError(f"users {args.action} needs a user name.")
    project_id = _project_id(engine, args) if args.project else None
    out: dict = {}
    try:
        with session_scope(engine) as session:
            if args.action == "list":
                _emit(
                    [
                        {
                            "username": a.username,
                            "display_name": a.display_name,
                            "role": a.role,
                            "email": a.email,
                            "disabled": a.disabled,
                            "last_sign_in_at": a.last_sign_in_at,
                        }
                        for a in list_accounts(session)
                    ]
                )
                return 0
            if args.action == "add":
                password, generated = (None, False) if args.sso_only else _password(args)
                account = add_account(
                    session, args.username, password, args.role or "annotator", args.display_name, args.email, by=_who()
                )
                out = {"username": account.username, "role": account.role}
                if generated:
                    out["password"] = password
            elif args.action == "passwd":
                password, generated = _password(args)
                set_password(session, args.username, password, by=_who())
                out = {"username": args.username, **({"password": password} if generated else {})}
            elif args.action == "role":
                if not args.role:
                    raise CliError("users role needs --role.")
                set_role(session, args.username, args.role, by=_who(), project_id=project_id)
                out = {"username": args.username, "role": args.role, "project_id": project_id}
            else:
                set_disabled(session, args.username, args.action == "disable", by=_who())
                out = {"username": args.username, "disabled": args.action == "disable"}
    except AccountError as exc:
        raise CliError(str(exc)) from exc
    _emit(out)
    return 0
