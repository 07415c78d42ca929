"""The facade's access side: log-in, users, organizations, grants and visibility, deletion, audit log.

Mixed into `dsgen_core.api.Dsgen`. Every method takes the acting user first (log-in excepted) and
checks rights here, in the core; pages and CLI only show what comes back.
"""

from __future__ import annotations

import csv
import io
import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError

from dsgen_core import auth, permissions
from dsgen_core.catalog.models import (
    AuditEntry,
    DatasetGroup,
    DatasetVersion,
    GroupGrant,
    Membership,
    Organization,
    User,
    utcnow,
)
from dsgen_core.errors import InvalidRequest, NotFound, PermissionDenied
from dsgen_core.users import Actor, hash_password

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from dsgen_core.app import App

USERNAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


@dataclass
class UserInfo:
    id: int
    username: str
    email: str | None
    is_admin: bool
    is_active: bool
    created_at: datetime
    organizations: list[str]


@dataclass
class OrgInfo:
    id: int
    name: str
    members: list[str]


@dataclass
class GrantInfo:
    username: str
    role: str
    granted_by: str | None
    created_at: datetime


@dataclass
class AuditInfo:
    id: int
    at: datetime
    username: str | None
    action: str
    target_type: str | None
    target_id: int | None
    details: dict[str, Any] | None


AUDIT_CSV_COLUMNS = ["id", "at", "username", "action", "target_type", "target_id", "details"]


class AccessFacade:
    """Log-in, users, organizations, group access, deletion and the audit log."""

    app: App

    # ----- log-in and sessions -------------------------------------------------------------

    def login(self, login_name: str, password: str, kind: str = "web", name: str = "") -> auth.LoginResult:
        """Check credentials; returns a session (web) or API token (CLI) and the user."""
        if kind not in ("web", "api"):
            raise InvalidRequest(f"unknown session kind {kind!r}")
        return auth.login(self.app.catalog, login_name, password, kind=kind, name=name)

    def actor_for_token(self, token: str | None) -> Actor | None:
        return auth.actor_for_token(self.app.catalog, token)

    def logout(self, token: str | None) -> None:
        auth.logout(self.app.catalog, token)

    def change_password(self, actor: Actor, old: str, new: str, keep_token: str | None = None) -> None:
        """Change one's own password; every other session and token of the user is revoked."""
        permissions.require_login(actor)
        auth.check_password_policy(new)
        with self.app.catalog.session() as s:
            user = s.get(User, actor.id)
            if user is None or not auth.verify_password(user.password_hash, old):
                raise PermissionDenied("the current password is wrong")
            user.password_hash = hash_password(new)
            revoked = auth.revoke_all(s, user.id, keep_token=keep_token)
            s.add(AuditEntry(user_id=actor.id, action="user.password", target_type="user", target_id=actor.id,
                             details={"sessions_revoked": revoked}))

    def whoami(self, actor: Actor) -> UserInfo:
        permissions.require_login(actor)
        with self.app.catalog.session() as s:
            return _user_info(s, s.get(User, actor.id))

    # ----- users (site admins) ---------------------------------------------------------------

    def list_users(self, actor: Actor) -> list[UserInfo]:
        permissions.require_admin(actor)
        with self.app.catalog.session() as s:
            return [_user_info(s, u) for u in s.scalars(select(User).order_by(User.username))]

    def list_usernames(self, actor: Actor) -> list[str]:
        """Whom the permission dialogs offer: site admins every active user; others the active members of
        their organizations and the users already granted on groups they own (anyone else by exact name)."""
        permissions.require_login(actor)
        q = select(User.username).where(User.is_active.is_(True)).order_by(User.username)
        if not actor.is_admin:
            my_orgs = select(Membership.org_id).where(Membership.user_id == actor.id)
            co_members = select(Membership.user_id).where(Membership.org_id.in_(my_orgs))
            my_groups = select(DatasetGroup.id).where(DatasetGroup.owner_id == actor.id).union(
                select(GroupGrant.group_id).where(GroupGrant.user_id == actor.id, GroupGrant.role == "owner"))
            grantees = select(GroupGrant.user_id).where(GroupGrant.group_id.in_(my_groups))
            q = q.where(or_(User.id == actor.id, User.id.in_(co_members), User.id.in_(grantees)))
        with self.app.catalog.session() as s:
            return list(s.scalars(q))

    def find_username(self, actor: Actor, name_or_email: str) -> str:
        """The username of the active user with exactly this username or e-mail, for granting access to
        someone the dialog does not list; no partial matches, so nobody can enumerate users."""
        permissions.require_login(actor)
        wanted = (name_or_email or "").strip()
        with self.app.catalog.session() as s:
            found = s.scalars(select(User.username).where(
                User.is_active.is_(True),
                or_(User.username == wanted, func.lower(User.email) == wanted.lower()))).first()
        if not wanted or found is None:
            raise NotFound(f"no active user has the username or e-mail {wanted!r} (exact match)")
        return found

    def create_user(self, actor: Actor, username: str, email: str | None = None, password: str | None = None,
                    is_admin: bool = False) -> tuple[UserInfo, str | None]:
        """Create a user; without a password a one-time one is generated and returned (shown once)."""
        permissions.require_admin(actor)
        username = (username or "").strip()
        if not (1 <= len(username) <= 64) or not set(username) <= USERNAME_CHARS:
            raise InvalidRequest(f"username {username!r}: use 1–64 letters, digits, '_', '.' or '-'")
        email = (email or "").strip() or None
        if email is not None and ("@" not in email or len(email) > 255):
            raise InvalidRequest(f"e-mail {email!r} does not look like an address")
        generated = None
        if password is None:
            password = generated = secrets.token_urlsafe(12)
        auth.check_password_policy(password)
        try:
            with self.app.catalog.session() as s:
                user = User(username=username, email=email, password_hash=hash_password(password),
                            is_admin=is_admin, is_active=True)
                s.add(user)
                s.flush()
                s.add(AuditEntry(user_id=actor.id, action="user.create", target_type="user", target_id=user.id,
                                 details={"username": username, "is_admin": is_admin}))
                return _user_info(s, user), generated
        except IntegrityError:
            raise InvalidRequest(f"a user named {username!r} or with e-mail {email!r} exists already") from None

    def set_user_active(self, actor: Actor, username: str, active: bool) -> UserInfo:
        """Disable (revoking every session and token) or re-enable a user."""
        permissions.require_admin(actor)
        with self.app.catalog.session() as s:
            user = _user_by_name(s, username)
            if user.id == actor.id and not active:
                raise InvalidRequest("you cannot disable yourself")
            user.is_active = active
            revoked = 0 if active else auth.revoke_all(s, user.id)
            s.add(AuditEntry(user_id=actor.id, action="user.enable" if active else "user.disable",
                             target_type="user", target_id=user.id,
                             details={"username": username, "sessions_revoked": revoked}))
            return _user_info(s, user)

    def reset_password(self, actor: Actor, username: str) -> str:
        """Give a user a new one-time password (returned once) and revoke their sessions."""
        permissions.require_admin(actor)
        password = secrets.token_urlsafe(12)
        with self.app.catalog.session() as s:
            user = _user_by_name(s, username)
            user.password_hash = hash_password(password)
            user.failed_logins, user.locked_until = 0, None
            auth.revoke_all(s, user.id)
            s.add(AuditEntry(user_id=actor.id, action="user.reset_password", target_type="user",
                             target_id=user.id, details={"username": username}))
        return password

    # ----- organizations ---------------------------------------------------------------------

    def create_org(self, actor: Actor, name: str) -> OrgInfo:
        permissions.require_admin(actor)
        name = (name or "").strip()
        if not (1 <= len(name) <= 200):
            raise InvalidRequest("organization name must have 1–200 characters")
        try:
            with self.app.catalog.session() as s:
                org = Organization(name=name)
                s.add(org)
                s.flush()
                s.add(AuditEntry(user_id=actor.id, action="org.create", target_type="org", target_id=org.id,
                                 details={"name": name}))
                return OrgInfo(org.id, org.name, [])
        except IntegrityError:
            raise InvalidRequest(f"an organization named {name!r} exists already") from None

    def add_member(self, actor: Actor, org: str, username: str) -> OrgInfo:
        permissions.require_admin(actor)
        with self.app.catalog.session() as s:
            o, user = _org_by_name(s, org), _user_by_name(s, username)
            exists = s.scalar(select(Membership.id).where(Membership.org_id == o.id, Membership.user_id == user.id))
            if exists is None:
                s.add(Membership(org_id=o.id, user_id=user.id))
                s.add(AuditEntry(user_id=actor.id, action="org.add_member", target_type="org", target_id=o.id,
                                 details={"username": username}))
            s.flush()
            return _org_info(s, o)

    def remove_member(self, actor: Actor, org: str, username: str) -> OrgInfo:
        permissions.require_admin(actor)
        with self.app.catalog.session() as s:
            o, user = _org_by_name(s, org), _user_by_name(s, username)
            m = s.scalars(select(Membership).where(Membership.org_id == o.id, Membership.user_id == user.id)).first()
            if m is None:
                raise NotFound(f"{username} is not a member of {org}")
            s.delete(m)
            s.add(AuditEntry(user_id=actor.id, action="org.remove_member", target_type="org", target_id=o.id,
                             details={"username": username}))
            s.flush()
            return _org_info(s, o)

    def list_orgs(self, actor: Actor) -> list[OrgInfo]:
        """Admins see every organization; others the ones they belong to."""
        permissions.require_login(actor)
        with self.app.catalog.session() as s:
            q = select(Organization).order_by(Organization.name)
            if not actor.is_admin:
                q = q.where(Organization.id.in_(select(Membership.org_id).where(Membership.user_id == actor.id)))
            return [_org_info(s, o) for o in s.scalars(q)]

    # ----- group access ----------------------------------------------------------------------

    def set_visibility(self, actor: Actor, group: int | str, visibility: str, organization: str | None = None) -> None:
        """private | organization (members of `organization`) | public (every logged-in user). Owners only."""
        if visibility not in permissions.VISIBILITIES:
            raise InvalidRequest(f"visibility must be one of {', '.join(permissions.VISIBILITIES)}, not {visibility!r}")
        with self.app.catalog.session() as s:
            g = self._load_group(s, group, actor, "owner")
            org_id = None
            if visibility == "organization":
                if not organization:
                    raise InvalidRequest("visibility 'organization' needs the organization it is shared with")
                o = _org_by_name(s, organization)
                member = s.scalar(select(Membership.id).where(Membership.org_id == o.id,
                                                              Membership.user_id == actor.id))
                if member is None and not actor.is_admin:
                    raise PermissionDenied(f"you are not a member of {organization!r}")
                org_id = o.id
            before = (g.visibility, g.org_id)
            g.visibility, g.org_id = visibility, org_id
            s.add(AuditEntry(user_id=actor.id, action="group.visibility", target_type="group", target_id=g.id,
                             details={"from": before[0], "to": visibility, "organization": organization}))

    def grant(self, actor: Actor, group: int | str, username: str, role: str) -> GrantInfo:
        """Give a user viewer, editor or owner rights on a group (replacing an earlier grant). Owners only."""
        if role not in permissions.ROLES:
            raise InvalidRequest(f"role must be one of {', '.join(permissions.ROLES)}, not {role!r}")
        with self.app.catalog.session() as s:
            g = self._load_group(s, group, actor, "owner")
            user = _user_by_name(s, username)
            row = _grant_row(s, g.id, user.id)
            if row is None:
                row = GroupGrant(group_id=g.id, user_id=user.id, role=role, granted_by=actor.id)
                s.add(row)
            else:
                row.role, row.granted_by = role, actor.id
            s.add(AuditEntry(user_id=actor.id, action="group.grant", target_type="group", target_id=g.id,
                             details={"username": username, "role": role}))
            s.flush()
            return GrantInfo(username, role, actor.username, row.created_at or utcnow())

    def revoke(self, actor: Actor, group: int | str, username: str) -> None:
        with self.app.catalog.session() as s:
            g = self._load_group(s, group, actor, "owner")
            row = _grant_row(s, g.id, _user_by_name(s, username).id)
            if row is None:
                raise NotFound(f"{username} has no grant on {g.name!r}")
            s.delete(row)
            s.add(AuditEntry(user_id=actor.id, action="group.revoke", target_type="group", target_id=g.id,
                             details={"username": username, "role": row.role}))

    def list_grants(self, actor: Actor, group: int | str) -> list[GrantInfo]:
        with self.app.catalog.session() as s:
            g = self._load_group(s, group, actor, "owner")
            rows = s.execute(
                select(GroupGrant, User.username).join(User, User.id == GroupGrant.user_id)
                .where(GroupGrant.group_id == g.id).order_by(User.username)
            ).all()
            names = {u.id: u.username for u in s.scalars(select(User))}
            return [GrantInfo(name, gr.role, names.get(gr.granted_by), gr.created_at) for gr, name in rows]

    # ----- deletion: soft first, purge explicitly ----------------------------------------------

    def delete_group(self, actor: Actor, group: int | str) -> None:
        """Soft-delete a group (hidden everywhere, restorable); storage stays until purge_group."""
        with self.app.catalog.session() as s:
            g = self._load_group(s, group, actor, "owner")
            g.deleted_at = utcnow()
            s.add(AuditEntry(user_id=actor.id, action="group.delete", target_type="group", target_id=g.id,
                             details={"name": g.name, "versions": len(g.versions)}))

    def restore_group(self, actor: Actor, group_id: int) -> None:
        with self.app.catalog.session() as s:
            g = self._deleted_group(s, actor, group_id)
            g.deleted_at = None
            s.add(AuditEntry(user_id=actor.id, action="group.restore", target_type="group", target_id=g.id,
                             details={"name": g.name}))

    def list_deleted_groups(self, actor: Actor) -> list[Any]:
        """Soft-deleted groups the actor owns (admins: all), for restore or purge."""
        permissions.require_login(actor)
        with self.app.catalog.session() as s:
            q = select(DatasetGroup).where(DatasetGroup.deleted_at.is_not(None)).order_by(DatasetGroup.deleted_at)
            groups = [g for g in s.scalars(q) if permissions.at_least(permissions.role_of(actor, g, s), "owner")]
            return [self._group_info(s, g, actor) for g in groups]

    def delete_version(self, actor: Actor, version_id: int) -> None:
        with self.app.catalog.session() as s:
            v = self._load_version(s, version_id, actor, "owner")
            if v.status in ("PENDING", "PROCESSING"):
                raise InvalidRequest(f"version {version_id} is still {v.status}; cancel its job first")
            v.deleted_at = utcnow()
            s.add(AuditEntry(user_id=actor.id, action="version.delete", target_type="version", target_id=v.id,
                             details={"group": v.group.name, "split": v.split, "version": v.version}))

    def list_deleted_versions(self, actor: Actor, group: int | str) -> list[Any]:
        """Soft-deleted versions of a live group, for an owner to restore."""
        with self.app.catalog.session() as s:
            g = self._load_group(s, group, actor, "owner")
            return [self._version_info(s, v) for v in g.versions if v.deleted_at is not None]

    def restore_version(self, actor: Actor, version_id: int) -> None:
        with self.app.catalog.session() as s:
            v = s.get(DatasetVersion, int(version_id))
            if v is None or v.deleted_at is None or v.group.deleted_at is not None:
                raise NotFound(f"no deleted version {version_id} to restore")
            permissions.require_owner(actor, v.group)
            v.deleted_at = None
            s.add(AuditEntry(user_id=actor.id, action="version.restore", target_type="version", target_id=v.id))

    def purge_group(self, actor: Actor, group_id: int) -> dict[str, int]:
        """Free the storage of a soft-deleted group: its lake folders and image blobs no other
        version uses. Catalog rows stay (status PURGED) so the audit log and lineage still resolve."""
        with self.app.catalog.session() as s:
            g = self._deleted_group(s, actor, group_id)
            purged = [v for v in g.versions if v.lake_path]
            keep = s.scalars(select(DatasetVersion).where(
                DatasetVersion.group_id != g.id, DatasetVersion.lake_path.is_not(None))).all()
            folders = [self.app.settings.lake_root / v.lake_path for v in purged]
            keep_folders = [self.app.settings.lake_root / v.lake_path for v in keep]
        doomed = _blob_uris(folders) - _blob_uris(keep_folders)
        blobs = sum(self.app.storage.delete(uri) for uri in sorted(doomed))
        from dsgen_core.importing.job import thumb_path

        for uri in doomed:  # thumbnails are keyed by the same content hash
            thumb_path(self.app, uri.removeprefix("blob://")[:64]).unlink(missing_ok=True)
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
        with self.app.catalog.session() as s:
            for v in s.scalars(select(DatasetVersion).where(DatasetVersion.group_id == group_id)):
                v.lake_path, v.status = None, "PURGED"
            result = {"versions": len(folders), "blobs": blobs}
            s.add(AuditEntry(user_id=actor.id, action="group.purge", target_type="group", target_id=group_id,
                             details=result))
        return result

    def _deleted_group(self, s: Session, actor: Actor, group_id: int) -> DatasetGroup:
        g = s.get(DatasetGroup, int(group_id))
        if g is None or g.deleted_at is None:
            raise NotFound(f"no deleted dataset group {group_id}")
        permissions.require_owner(actor, g)
        return g

    # ----- audit log -------------------------------------------------------------------------

    def list_audit(self, actor: Actor, username: str | None = None, action: str | None = None,
                   target_type: str | None = None, target_id: int | None = None,
                   since: datetime | None = None, until: datetime | None = None,
                   limit: int = 200, offset: int = 0) -> list[AuditInfo]:
        """Audit entries, newest first. Admins see all; others their own actions and those on
        groups (and their versions) they own."""
        permissions.require_login(actor)
        limit = max(1, min(int(limit), 10_000))
        with self.app.catalog.session() as s:
            q = select(AuditEntry, User.username).outerjoin(User, User.id == AuditEntry.user_id)
            if not actor.is_admin:
                owned = select(DatasetGroup.id).where(DatasetGroup.owner_id == actor.id)
                owned_via_grant = select(GroupGrant.group_id).where(GroupGrant.user_id == actor.id,
                                                                    GroupGrant.role == "owner")
                groups = owned.union(owned_via_grant).subquery()
                versions = select(DatasetVersion.id).where(DatasetVersion.group_id.in_(select(groups)))
                q = q.where(or_(
                    AuditEntry.user_id == actor.id,
                    and_(AuditEntry.target_type == "group", AuditEntry.target_id.in_(select(groups))),
                    and_(AuditEntry.target_type == "version", AuditEntry.target_id.in_(versions)),
                ))
            if username:
                q = q.where(User.username == username)
            if action:
                q = q.where(AuditEntry.action.startswith(action, autoescape=True))
            if target_type:
                q = q.where(AuditEntry.target_type == target_type)
            if target_id is not None:
                q = q.where(AuditEntry.target_id == int(target_id))
            if since:
                q = q.where(AuditEntry.at >= since)
            if until:
                q = q.where(AuditEntry.at < until)
            q = q.order_by(AuditEntry.id.desc()).limit(limit).offset(max(0, int(offset)))
            return [AuditInfo(e.id, e.at, name, e.action, e.target_type, e.target_id, e.details)
                    for e, name in s.execute(q)]

    def audit_csv(self, actor: Actor, **filters: Any) -> str:
        """The filtered audit log as CSV text with stable column names."""
        rows = self.list_audit(actor, limit=10_000, **filters)
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(AUDIT_CSV_COLUMNS)
        for r in rows:
            details = "" if r.details is None else _json(r.details)
            w.writerow([r.id, r.at.isoformat(sep=" ", timespec="seconds"), r.username or "", r.action,
                        r.target_type or "", "" if r.target_id is None else r.target_id, details])
        return out.getvalue()


def _json(value: Any) -> str:
    import orjson

    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _blob_uris(folders: list) -> set[str]:
    """Managed-storage URIs referenced by the images tables in these lake folders."""
    import duckdb

    files = [str(f / "images.parquet") for f in folders if (f / "images.parquet").exists()]
    if not files:
        return set()
    rows = duckdb.execute("SELECT DISTINCT uri FROM read_parquet($f) WHERE uri LIKE 'blob://%'", {"f": files}).fetchall()
    return {r[0] for r in rows}


def _grant_row(s: Session, group_id: int, user_id: int) -> GroupGrant | None:
    return s.scalars(select(GroupGrant).where(GroupGrant.group_id == group_id, GroupGrant.user_id == user_id)).first()


def _user_by_name(s: Session, username: str) -> User:
    user = s.scalars(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFound(f"user {username!r} not found")
    return user


def _org_by_name(s: Session, name: str) -> Organization:
    org = s.scalars(select(Organization).where(Organization.name == name)).first()
    if org is None:
        raise NotFound(f"organization {name!r} not found")
    return org


def _org_info(s: Session, o: Organization) -> OrgInfo:
    members = s.scalars(select(User.username).join(Membership, Membership.user_id == User.id)
                        .where(Membership.org_id == o.id).order_by(User.username))
    return OrgInfo(o.id, o.name, list(members))


def _user_info(s: Session, u: User) -> UserInfo:
    orgs = s.scalars(select(Organization.name).join(Membership, Membership.org_id == Organization.id)
                     .where(Membership.user_id == u.id).order_by(Organization.name))
    return UserInfo(u.id, u.username, u.email, u.is_admin, u.is_active, u.created_at, list(orgs))
