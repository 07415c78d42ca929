"""Server paths as resources: the import roots a site admin opens, and who may import from where.

A mixin of `dsgen_core.api.Dsgen`. A user may name a server path (to import, check, register in place,
or as a CVAT share folder) only inside an import root open to them; site admins anywhere. Nobody,
admins included, may import from dsgen's own data folder (DSGEN_HOME), except a user's own uploads.
The CLI without a token acts as the operator (the first admin), so it keeps that access.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from sqlalchemy import select

from dsgen_core import permissions
from dsgen_core.catalog.import_models import ImportRoot
from dsgen_core.catalog.models import AuditEntry, Membership, Organization, User
from dsgen_core.errors import InvalidRequest, NotFound
from dsgen_core.importing import uploads
from dsgen_core.importing.server_paths import PathPolicy

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from dsgen_core.api import ImportRequest
    from dsgen_core.app import App
    from dsgen_core.users import Actor


@dataclass
class ImportRootInfo:
    id: int
    path: str
    organizations: list[str]  # empty and users empty: open to every logged-in user
    users: list[str]
    created_at: datetime

    @property
    def everyone(self) -> bool:
        return not self.organizations and not self.users

    def __str__(self) -> str:
        who = "everyone" if self.everyone else ", ".join(
            [f"org {o}" for o in self.organizations] + [f"user {u}" for u in self.users])
        return f"{self.path}  ({who})"


def policy_for(app: App, user_id: int | None) -> PathPolicy:
    """The server paths this user may import from, as the catalog says now."""
    home = (app.settings.home.resolve(),)
    if user_id is None:
        return PathPolicy(roots=(), forbidden=home)
    own = (uploads.user_folder(app.settings, user_id).resolve(),)
    with app.catalog.session() as s:
        user = s.get(User, user_id)
        if user is None or not user.is_active:
            return PathPolicy(roots=(), forbidden=home)
        if user.is_admin:
            return PathPolicy(roots=None, forbidden=home, own=own)
        orgs = set(s.scalars(select(Membership.org_id).where(Membership.user_id == user_id)))
        rows = s.scalars(select(ImportRoot)).all()
        roots = tuple(Path(r.path).resolve() for r in rows if _open_to(r, user_id, orgs))
    return PathPolicy(roots=roots, forbidden=home, own=own)


def _open_to(root: ImportRoot, user_id: int, orgs: set[int]) -> bool:
    org_ids, user_ids = set(root.org_ids or []), set(root.user_ids or [])
    return (not org_ids and not user_ids) or user_id in user_ids or bool(org_ids & orgs)


class ImportRootsFacade:
    """Import roots (site admins), the acting user's path policy, and browser uploads."""

    app: App

    def add_import_root(self, actor: Actor, path: str, organizations: list[str] | tuple[str, ...] = (),
                        users: list[str] | tuple[str, ...] = ()) -> ImportRootInfo:
        """Open a server folder for importing (to everyone, or only to the organizations and users named).
        Adding a root again replaces whom it is open to."""
        permissions.require_admin(actor)
        given = Path(os.path.expanduser(str(path or "").strip()))
        if not given.is_absolute() or not given.is_dir():
            raise InvalidRequest(f"import root {str(path)!r}: expected an absolute path of an existing folder "
                                 "on the dsgen server")
        real = given.resolve()
        home = self.app.settings.home.resolve()
        if real == home or real.is_relative_to(home):
            raise InvalidRequest(f"import root {str(path)!r} lies in dsgen's data folder ({home}), which is never "
                                 "importable")
        with self.app.catalog.session() as s:
            org_ids = [_org_id(s, o) for o in dict.fromkeys(organizations or ())]
            user_ids = [_user_id(s, u) for u in dict.fromkeys(users or ())]
            row = s.scalars(select(ImportRoot).where(ImportRoot.path == str(real))).first()
            action = "import_root.update" if row else "import_root.add"
            if row is None:
                row = ImportRoot(path=str(real), created_by=actor.id)
                s.add(row)
            row.org_ids, row.user_ids = org_ids, user_ids
            s.flush()
            s.add(AuditEntry(user_id=actor.id, action=action, target_type="import_root", target_id=row.id,
                             details={"path": row.path, "organizations": list(dict.fromkeys(organizations or ())),
                                      "users": list(dict.fromkeys(users or ()))}))
            return _info(s, row)

    def list_import_roots(self, actor: Actor) -> list[ImportRootInfo]:
        """Site admins: every root; others: the roots open to them (for the Import page's hint)."""
        permissions.require_login(actor)
        with self.app.catalog.session() as s:
            rows = s.scalars(select(ImportRoot).order_by(ImportRoot.path)).all()
            if not actor.is_admin:
                orgs = set(s.scalars(select(Membership.org_id).where(Membership.user_id == actor.id)))
                rows = [r for r in rows if _open_to(r, actor.id, orgs)]
            return [_info(s, r) for r in rows]

    def remove_import_root(self, actor: Actor, root: int | str) -> None:
        permissions.require_admin(actor)
        with self.app.catalog.session() as s:
            if isinstance(root, int) or str(root).isdigit():
                row = s.get(ImportRoot, int(root))
            else:
                real = Path(os.path.expanduser(str(root))).resolve()
                row = s.scalars(select(ImportRoot).where(ImportRoot.path.in_([str(root), str(real)]))).first()
            if row is None:
                raise NotFound(f"no import root {root!r}")
            s.add(AuditEntry(user_id=actor.id, action="import_root.remove", target_type="import_root",
                             target_id=row.id, details={"path": row.path}))
            s.delete(row)

    def path_policy(self, actor: Actor) -> PathPolicy:
        permissions.require_login(actor)
        return policy_for(self.app, actor.id)

    def require_server_path(self, actor: Actor, path: str, what: str = "server path") -> Path:
        """The resolved path if the actor may use it; else the one refusal that says nothing of its existence."""
        return self.path_policy(actor).check(path, what)

    def _authorize_import(self, actor: Actor, req: ImportRequest) -> str:
        """Check every server path of the request; returns how messages should name the source."""
        policy = self.path_policy(actor)
        policy.check(req.path)
        if req.images_path:
            policy.check(req.images_path, "images folder")
        if req.annotations_path and Path(os.path.expanduser(req.annotations_path)).is_absolute():
            policy.check(req.annotations_path, "annotation file")
        upload = uploads.upload_of(self.app.settings, req.path)
        return Path(req.path).name if upload is not None else req.path

    # ----- browser uploads ------------------------------------------------------------------------

    def save_upload(self, actor: Actor, stream: BinaryIO, filename: str) -> str:
        """Keep an uploaded archive for this user's next check or import; returns the path to import."""
        permissions.require_login(actor)
        return str(uploads.save_upload(self.app.settings, actor.id, stream, filename))

    def discard_upload(self, actor: Actor, path: str) -> bool:
        """Remove one of the actor's own uploads (e.g. replaced in the uploader before importing)."""
        permissions.require_login(actor)
        mine = uploads.user_folder(self.app.settings, actor.id).resolve()
        folder = uploads.upload_of(self.app.settings, path)
        if folder is None or not folder.resolve().is_relative_to(mine):
            return False
        return uploads.discard(self.app.settings, path)


def _info(s: Session, r: ImportRoot) -> ImportRootInfo:
    orgs = {o.id: o.name for o in s.scalars(select(Organization).where(Organization.id.in_(r.org_ids or [])))}
    users = {u.id: u.username for u in s.scalars(select(User).where(User.id.in_(r.user_ids or [])))}
    return ImportRootInfo(r.id, r.path, [orgs[i] for i in r.org_ids or [] if i in orgs],
                          [users[i] for i in r.user_ids or [] if i in users], r.created_at)


def _org_id(s: Session, name: str) -> int:
    oid = s.scalar(select(Organization.id).where(Organization.name == name))
    if oid is None:
        raise NotFound(f"organization {name!r} not found")
    return oid


def _user_id(s: Session, name: str) -> int:
    uid = s.scalar(select(User.id).where(User.username == name))
    if uid is None:
        raise NotFound(f"user {name!r} not found")
    return uid
