"""`dsgen login/logout/whoami`, users, organizations, grants, visibility, delete/restore, audit and secrets.

Who acts: the token from `--token`, `$DSGEN_TOKEN` or the file `dsgen login` wrote
(`~/.config/dsgen/tokens.json`, mode 0600, one token per catalog). Without a token the shell is
the installation's operator (it holds the catalog's credentials) and acts as the first admin.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED = 0, 1


def token_file() -> Path:
    return Path(os.environ.get("DSGEN_TOKEN_FILE") or Path.home() / ".config" / "dsgen" / "tokens.json")


def _catalog_key(api: Any) -> str:
    return api.app.catalog.engine.url.render_as_string(hide_password=True)


def _read_tokens() -> dict[str, str]:
    try:
        return json.loads(token_file().read_text())
    except (OSError, ValueError):
        return {}


def _write_tokens(tokens: dict[str, str]) -> None:
    path = token_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(tokens, f)
    os.replace(tmp, path)


def given_token(args: argparse.Namespace) -> str | None:
    """The token named by `--token` or $DSGEN_TOKEN; an empty one (an unset shell variable) is refused
    instead of quietly acting as the operator."""
    from dsgen_core.errors import InvalidRequest

    given = (("--token", getattr(args, "token", None), "leave --token out"),
             ("DSGEN_TOKEN", os.environ.get("DSGEN_TOKEN"), "unset DSGEN_TOKEN"))
    for where, value, instead in given:
        if value is None:
            continue
        if not value.strip():
            raise InvalidRequest(f"{where} is empty: pass a session token (`dsgen login` saves one), or {instead} "
                                 "to act as the installation's operator")
        return value.strip()
    return None


def acting_user(api: Any, args: argparse.Namespace) -> Any:
    """The actor of this command: a token's user, or the operator (first admin) when there is none."""
    from dsgen_core.errors import PermissionDenied

    token = given_token(args)
    if token is None:
        token = _read_tokens().get(_catalog_key(api))
    if not token:
        return api.default_actor
    actor = api.actor_for_token(token)
    if actor is None:
        raise PermissionDenied("your token has expired or was revoked: run `dsgen login` again")
    return actor


def cmd_login(args: argparse.Namespace) -> int:
    from dsgen_core.cli import _api

    api = _api()
    username = args.username or input("username or e-mail: ")
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("password: ")
    result = api.login(username, password, kind="api", name=f"cli@{socket.gethostname()}")
    tokens = _read_tokens()
    tokens[_catalog_key(api)] = result.token
    _write_tokens(tokens)
    print(f"logged in as {result.actor.username} until {result.expires_at:%Y-%m-%d %H:%M} UTC "
          f"(token saved in {token_file()})")
    return EXIT_OK


def cmd_logout(args: argparse.Namespace) -> int:
    from dsgen_core.cli import _api

    api = _api()
    tokens = _read_tokens()
    token = tokens.pop(_catalog_key(api), None)
    api.logout(token)
    _write_tokens(tokens)
    print("logged out" if token else "no saved token for this catalog")
    return EXIT_OK


def _run(args: argparse.Namespace, method: str, *params: Any, **kw: Any) -> Any:
    from dsgen_core.cli import _api

    api = _api()
    return getattr(api, method)(acting_user(api, args), *params, **kw)


def cmd_whoami(args: argparse.Namespace) -> int:
    me = _run(args, "whoami")
    print(f"{me.username} ({'site admin' if me.is_admin else 'user'}); organizations: "
          f"{', '.join(me.organizations) or 'none'}")
    return EXIT_OK


def cmd_users(args: argparse.Namespace) -> int:
    if args.action == "list":
        for u in _run(args, "list_users"):
            state = "active" if u.is_active else "disabled"
            print(f"{u.username:20} {'admin' if u.is_admin else 'user':6} {state:9} {u.email or ''}")
    elif args.action == "create":
        info, one_time = _run(args, "create_user", args.name, email=args.email, is_admin=args.admin)
        print(f"created {info.username}; one-time password (shown once): {one_time}")
    elif args.action in ("disable", "enable"):
        _run(args, "set_user_active", args.name, args.action == "enable")
        print(f"{args.name} {args.action}d")
    elif args.action == "reset-password":
        print(f"new one-time password for {args.name} (shown once): {_run(args, 'reset_password', args.name)}")
    return EXIT_OK


def cmd_orgs(args: argparse.Namespace) -> int:
    if args.action == "list":
        for o in _run(args, "list_orgs"):
            print(f"{o.name}: {', '.join(o.members) or '(no members)'}")
    elif args.action == "create":
        _run(args, "create_org", args.org)
        print(f"created organization {args.org}")
    elif args.action == "add-member":
        _run(args, "add_member", args.org, args.user)
        print(f"{args.user} is now a member of {args.org}")
    elif args.action == "remove-member":
        _run(args, "remove_member", args.org, args.user)
        print(f"{args.user} is no longer a member of {args.org}")
    return EXIT_OK


def _group_ref(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def cmd_access(args: argparse.Namespace) -> int:
    group = _group_ref(args.group)
    if args.action == "grant":
        _run(args, "grant", group, args.user, args.role)
        print(f"{args.user} is now {args.role} of {args.group}")
    elif args.action == "revoke":
        _run(args, "revoke", group, args.user)
        print(f"revoked {args.user}'s access to {args.group}")
    elif args.action == "list":
        for g in _run(args, "list_grants", group):
            print(f"{g.username:20} {g.role}")
    elif args.action == "visibility":
        _run(args, "set_visibility", group, args.visibility, args.org)
        print(f"{args.group} is now {args.visibility}")
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    if not args.yes:
        print(f"refusing to delete {args.group} without --yes (it can be restored until purged)", file=sys.stderr)
        return EXIT_FAILED
    _run(args, "delete_group", _group_ref(args.group))
    print(f"deleted {args.group} (restore with `dsgen datasets restore <id>`)")
    return EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    _run(args, "restore_group", args.group_id)
    print(f"restored group {args.group_id}")
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    filters = {"username": args.user, "action": args.action}
    if args.csv:
        sys.stdout.write(_run(args, "audit_csv", **filters))
        return EXIT_OK
    for e in _run(args, "list_audit", limit=args.limit, **filters):
        target = f"{e.target_type} {e.target_id}" if e.target_type else ""
        print(f"{e.at:%Y-%m-%d %H:%M:%S}  {e.username or '-':12} {e.action:22} {target:14} {e.details or ''}")
    return EXIT_OK


def cmd_secrets(args: argparse.Namespace) -> int:
    if args.action == "rotate":
        count = _run(args, "rotate_secret_key")
        print(f"re-encrypted {count} stored secret(s) with a new key")
        return EXIT_OK
    st = _run(args, "secret_key_status")
    print(f"key: {st.key_source} ({st.keys} key(s), the first encrypts); stored secrets: {st.sealed} encrypted, "
          f"{st.plain} in plain text")
    return EXIT_OK


SECRETS_HELP = """CVAT connection secrets are stored encrypted (Fernet) with the installation's key: $DSGEN_SECRET_KEY
(Fernet keys separated by commas; the first encrypts) or else DSGEN_HOME/secret.key (mode 0600, made on first
start). `rotate` re-encrypts every secret with a new key: with the key file it writes the new key itself; with
DSGEN_SECRET_KEY put a new key first (NEW,OLD), rotate, then drop OLD. Make a key with
  python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"
Keys and secrets are never printed."""


def add_access_commands(sub: Any, datasets: Any) -> None:
    """Register the access commands on the top-level and the `datasets` sub-parsers."""
    lg = sub.add_parser("login", help="log in and save a token for later commands")
    lg.add_argument("--username", help="username or e-mail (asked when missing)")
    lg.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    lg.set_defaults(func=cmd_login)
    sub.add_parser("logout", help="revoke and forget the saved token").set_defaults(func=cmd_logout)
    sub.add_parser("whoami", help="show the acting user").set_defaults(func=cmd_whoami)

    us = sub.add_parser("users", help="site admins: list, create, disable, enable users, reset passwords")
    us.add_argument("action", choices=["list", "create", "disable", "enable", "reset-password"])
    us.add_argument("name", nargs="?", help="username (all actions but list)")
    us.add_argument("--email")
    us.add_argument("--admin", action="store_true", help="create a site admin")
    us.set_defaults(func=cmd_users)

    og = sub.add_parser("orgs", help="organizations: list; site admins: create, add-member, remove-member")
    og.add_argument("action", choices=["list", "create", "add-member", "remove-member"])
    og.add_argument("org", nargs="?")
    og.add_argument("user", nargs="?")
    og.set_defaults(func=cmd_orgs)

    ac = sub.add_parser("access", help="owners: grant, revoke, list grants, change visibility of a group")
    ac.add_argument("action", choices=["grant", "revoke", "list", "visibility"])
    ac.add_argument("group", help="group name or id")
    ac.add_argument("user", nargs="?", help="user (grant, revoke)")
    ac.add_argument("role", nargs="?", choices=["viewer", "editor", "owner"], help="role (grant)")
    ac.add_argument("--visibility", choices=["private", "organization", "public"])
    ac.add_argument("--org", help="organization, with --visibility organization")
    ac.set_defaults(func=cmd_access)

    dd = datasets.add_parser("delete", help="soft-delete a group (owners; restorable until purged)")
    dd.add_argument("group", help="group name or id")
    dd.add_argument("--yes", action="store_true", help="confirm")
    dd.set_defaults(func=cmd_delete)
    dr = datasets.add_parser("restore", help="restore a soft-deleted group")
    dr.add_argument("group_id", type=int)
    dr.set_defaults(func=cmd_restore)

    se = sub.add_parser("secrets", help="site admins: where the secret key lives; rotate it",
                        description=SECRETS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    se.add_argument("action", choices=["status", "rotate"])
    se.set_defaults(func=cmd_secrets)

    au = sub.add_parser("audit", help="the audit log (admins: all; others: own and their groups')")
    au.add_argument("--user")
    au.add_argument("--action", help="action prefix, e.g. group. or login")
    au.add_argument("--limit", type=int, default=50)
    au.add_argument("--csv", action="store_true", help="print CSV")
    au.set_defaults(func=cmd_audit)
