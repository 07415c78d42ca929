"""Who may do what to a dataset group: roles from ownership, grants, organization and visibility.

Checked by the facade on every call; pages only hide what these functions would refuse anyway.
Roles rank viewer < editor < owner; a site admin is owner of everything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, and_, or_, select, true
from sqlalchemy.orm import object_session

from dsgen_core.catalog.models import DatasetGroup, GroupGrant, Membership
from dsgen_core.errors import NotFound, PermissionDenied

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from dsgen_core.users import Actor

ROLES = ("viewer", "editor", "owner")
VISIBILITIES = ("private", "organization", "public")
_RANK = {None: 0, "viewer": 1, "editor": 2, "owner": 3}
# What each role may do, for messages and for pages that hide controls.
ROLE_ACTIONS = {
    "viewer": "read, search, export and use for training",
    "editor": "also tag, edit metadata, import new versions and run pipelines",
    "owner": "also grant access, change visibility and delete",
}


def require_login(actor: Actor | None) -> None:
    if actor is None:
        raise PermissionDenied("log in first")


def role_of(actor: Actor | None, group: DatasetGroup, session: Session | None = None) -> str | None:
    """The actor's effective role on the group, or None when they may not even see it."""
    if actor is None:
        return None
    if actor.is_admin or group.owner_id == actor.id:
        return "owner"
    s = session or object_session(group)
    if s is None:
        raise RuntimeError("role_of needs a group loaded in a session")
    grant = s.scalar(select(GroupGrant.role).where(GroupGrant.group_id == group.id, GroupGrant.user_id == actor.id))
    member = group.visibility == "organization" and group.org_id is not None and s.scalar(
        select(Membership.id).where(Membership.org_id == group.org_id, Membership.user_id == actor.id)) is not None
    return effective_role(actor, group.owner_id, group.visibility, grant, member)


def effective_role(actor: Actor | None, owner_id: int | None, visibility: str, grant: str | None,
                   org_member: bool) -> str | None:
    """The role rule itself, on plain values (so a caller can fetch them in one query)."""
    if actor is None:
        return None
    if actor.is_admin or owner_id == actor.id:
        return "owner"
    if visibility == "public" or (visibility == "organization" and org_member):
        return _max(grant, "viewer")
    return grant


def _max(a: str | None, b: str | None) -> str | None:
    return a if _RANK[a] >= _RANK[b] else b


def at_least(role: str | None, needed: str) -> bool:
    return _RANK[role] >= _RANK[needed]


def can_read(actor: Actor | None, group: DatasetGroup) -> bool:
    return at_least(role_of(actor, group), "viewer")


def can_edit(actor: Actor | None, group: DatasetGroup) -> bool:
    return at_least(role_of(actor, group), "editor")


def require_role(actor: Actor | None, group: DatasetGroup, needed: str) -> str:
    """Raise unless the actor has `needed` on the group; returns the actor's role."""
    require_login(actor)
    return check_role(actor, role_of(actor, group), needed, group.id, group.name)


def check_role(actor: Actor, role: str | None, needed: str, group_id: int, group_name: str) -> str:
    """Raise unless `role` (the actor's on the group) is at least `needed`; returns it."""
    if role is None:
        # The same message as a missing group, so private names and ids do not leak.
        raise NotFound(f"dataset group {group_id} not found")
    if not at_least(role, needed):
        raise PermissionDenied(
            f"{actor.username} is {role} of dataset group {group_name!r}; this needs {needed} "
            f"({needed}s may {ROLE_ACTIONS[needed]})"
        )
    return role


def require_read(actor: Actor | None, group: DatasetGroup) -> str:
    return require_role(actor, group, "viewer")


def require_edit(actor: Actor | None, group: DatasetGroup) -> str:
    return require_role(actor, group, "editor")


def require_owner(actor: Actor | None, group: DatasetGroup) -> str:
    return require_role(actor, group, "owner")


def require_admin(actor: Actor | None) -> None:
    require_login(actor)
    if not actor.is_admin:
        raise PermissionDenied(f"{actor.username} is not a site admin; only admins may do this")


def readable_clause(actor: Actor) -> ColumnElement[bool]:
    """A WHERE clause over DatasetGroup selecting exactly the groups the actor may read."""
    if actor.is_admin:
        return true()
    member_orgs = select(Membership.org_id).where(Membership.user_id == actor.id)
    granted = select(GroupGrant.group_id).where(GroupGrant.user_id == actor.id)
    return or_(
        DatasetGroup.owner_id == actor.id,
        DatasetGroup.visibility == "public",
        and_(DatasetGroup.visibility == "organization", DatasetGroup.org_id.in_(member_orgs)),
        DatasetGroup.id.in_(granted),
    )
