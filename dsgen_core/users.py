"""Users and the acting user every facade call takes; the first start creates an admin."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from dsgen_core.catalog.models import AuditEntry, User
from dsgen_core.errors import NotFound

password_hasher = PasswordHasher()  # argon2id with the library's defaults


@dataclass(frozen=True)
class Actor:
    """Who is acting: passed first to every facade call."""

    id: int
    username: str
    is_admin: bool


def hash_password(password: str) -> str:
    return password_hasher.hash(password)


def to_actor(user: User) -> Actor:
    return Actor(id=user.id, username=user.username, is_admin=user.is_admin)


def ensure_admin(catalog) -> tuple[Actor, str | None]:  # noqa: ANN001
    """Create the first admin if there are no users; returns it and the one-time password if generated.
    Processes starting together on a new catalog: one creates it, the others find it."""
    try:
        return _ensure_admin(catalog)
    except IntegrityError:
        return _ensure_admin(catalog)


def _ensure_admin(catalog) -> tuple[Actor, str | None]:  # noqa: ANN001
    with catalog.session() as s:
        if s.scalar(select(func.count(User.id))):
            admin = s.scalars(select(User).where(User.is_admin.is_(True)).order_by(User.id)).first()
            return to_actor(admin), None
        password = os.environ.get("DSGEN_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        generated = None if os.environ.get("DSGEN_ADMIN_PASSWORD") else password
        admin = User(username="admin", email=None, password_hash=hash_password(password), is_admin=True)
        s.add(admin)
        s.flush()
        s.add(AuditEntry(user_id=admin.id, action="user.create", target_type="user", target_id=admin.id,
                         details={"username": "admin", "first_start": True}))
        return to_actor(admin), generated


def actor_by_name(catalog, username: str) -> Actor:  # noqa: ANN001
    with catalog.session() as s:
        user = s.scalars(select(User).where(User.username == username)).first()
        if user is None or not user.is_active:
            raise NotFound(f"user {username!r} not found or disabled")
        return to_actor(user)
