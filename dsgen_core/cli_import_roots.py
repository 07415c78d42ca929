"""`dsgen import-roots add|list|remove`: the server folders users may import from (site admins).

Without a token the CLI is the operator (the first admin): it manages roots and imports from any path
of the machine except the data folder. With a user's token (`--token`, `dsgen login`) the user's rights
apply, as in the web app.
"""

from __future__ import annotations

import argparse
from typing import Any

EXIT_OK = 0


def cmd_import_roots(args: argparse.Namespace) -> int:
    from dsgen_core.cli_access import _run

    if args.action == "add":
        info = _run(args, "add_import_root", args.path, organizations=args.org or [], users=args.user or [])
        print(f"import root {info}")
    elif args.action == "remove":
        _run(args, "remove_import_root", args.path)
        print(f"removed import root {args.path}")
    else:
        roots = _run(args, "list_import_roots")
        if not roots:
            print("no import roots: users can only upload archives (add one with `dsgen import-roots add PATH`)")
        for r in roots:
            print(r)
    return EXIT_OK


def add_import_roots_command(sub: Any) -> None:
    p = sub.add_parser("import-roots", help="server folders users may import from (site admins: add, remove)",
                       description="Import roots: the server folders users may import from, register in place "
                                   "or use as a CVAT share folder. Without --org/--user a root is open to every "
                                   "logged-in user; adding a folder again replaces whom it is open to.")
    p.add_argument("action", choices=["list", "add", "remove"])
    p.add_argument("path", nargs="?", help="absolute folder on this server (add, remove; remove also takes the id)")
    p.add_argument("--org", action="append", help="only for members of this organization (repeatable)")
    p.add_argument("--user", action="append", help="only for this user (repeatable)")
    p.set_defaults(func=cmd_import_roots)
