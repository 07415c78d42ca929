"""Who may do what to a dataset group. Checked by the facade on every call (issue 3 adds grants and orgs)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dsgen_core.errors import PermissionDenied

if TYPE_CHECKING:
    from dsgen_core.catalog.models import DatasetGroup
    from dsgen_core.users import Actor


def require_login(actor: Actor | None) -> None:
    if actor is None:
        raise PermissionDenied("log in first")


def can_read(actor: Actor, group: DatasetGroup) -> bool:
    return actor.is_admin or group.owner_id == actor.id or group.visibility == "public"


def can_edit(actor: Actor, group: DatasetGroup) -> bool:
    return actor.is_admin or group.owner_id == actor.id


def require_read(actor: Actor, group: DatasetGroup) -> None:
    require_login(actor)
    if not can_read(actor, group):
        # Same message as a missing group, so private names do not leak.
        from dsgen_core.errors import NotFound

        raise NotFound(f"dataset group {group.id} not found")


def require_edit(actor: Actor, group: DatasetGroup) -> None:
    require_read(actor, group)
    if not can_edit(actor, group):
        raise PermissionDenied(f"you ({actor.username}) may read but not change dataset group {group.name!r}")
