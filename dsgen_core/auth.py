"""Log-in, sessions and API tokens: argon2 password checks with slow-down, opaque tokens stored hashed.

A token is 32 random bytes shown once (cookie or CLI file); the catalog keeps only its sha256, so a
leaked catalog gives no usable session. Sessions expire; logout and disabling a user revoke them.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, or_, select, update

from dsgen_core.catalog.models import AuditEntry, AuthSession, User, utcnow
from dsgen_core.errors import DsgenError, InvalidRequest
from dsgen_core.users import Actor, password_hasher, to_actor


@cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so timing does not tell which usernames exist."""
    return password_hasher.hash("dsgen-no-such-user")


SESSION_COOKIE = "dsgen_session"  # the web app's HttpOnly cookie carrying the session token
MIN_PASSWORD_LENGTH = 10
FREE_FAILURES = 5  # failed attempts before the slow-down starts
MAX_LOCK = timedelta(minutes=15)


class AuthFailed(DsgenError):
    """A log-in was refused; the message never says whether the username exists."""


@dataclass(frozen=True)
class LoginResult:
    token: str  # the secret: put it in a cookie or a 0600 file, never in a log
    actor: Actor
    expires_at: datetime


def session_lifetime(kind: str) -> timedelta:
    if kind == "api":
        return timedelta(days=float(os.environ.get("DSGEN_TOKEN_DAYS", "90")))
    return timedelta(hours=float(os.environ.get("DSGEN_SESSION_HOURS", "12")))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_password_policy(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidRequest(f"password too short: use at least {MIN_PASSWORD_LENGTH} characters")
    if password.strip() != password or not password.strip():
        raise InvalidRequest("password must not start or end with spaces")


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return password_hasher.verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def _lock_for(failures: int) -> timedelta | None:
    if failures < FREE_FAILURES:
        return None
    return min(timedelta(seconds=30 * 2 ** (failures - FREE_FAILURES)), MAX_LOCK)


# The one answer to every refused log-in: a wrong password, an unknown name, a disabled or a locked account
# all read the same, so the answer never tells whether a username exists.
REFUSED = ("wrong username or password (or the account is disabled, or locked for a while after repeated "
           "failures)")


def login(catalog, login_name: str, password: str, kind: str = "web", name: str = "") -> LoginResult:  # noqa: ANN001
    """Check a username (or e-mail) and password; on success create a session or API token.

    Every refusal costs one password verification and answers REFUSED, so neither the message nor the
    time taken tells an unknown name from a real, disabled or locked account."""
    login_name = (login_name or "").strip()
    now = utcnow()
    with catalog.session() as s:
        user = _find_user(s, login_name)
        ok = verify_password(user.password_hash if user else None, password)
        if user is None:
            s.add(AuditEntry(user_id=None, action="login.failed", target_type="user", details={"known": False}))
        elif user.locked_until is not None and user.locked_until > now:
            s.add(AuditEntry(user_id=user.id, action="login.locked", target_type="user", target_id=user.id))
        elif not ok or not user.is_active:
            user.failed_logins = (user.failed_logins or 0) + 1
            lock = _lock_for(user.failed_logins)
            user.locked_until = now + lock if lock else None
            s.add(AuditEntry(user_id=user.id, action="login.failed", target_type="user", target_id=user.id,
                             details={"failures": user.failed_logins}))
        else:
            user.failed_logins, user.locked_until = 0, None
            token = secrets.token_urlsafe(32)
            expires = now + session_lifetime(kind)
            s.add(AuthSession(token_hash=token_hash(token), user_id=user.id, kind=kind, name=name[:200],
                              created_at=now, expires_at=expires, last_seen_at=now))
            s.add(AuditEntry(user_id=user.id, action="login" if kind == "web" else "token.create",
                             target_type="user", target_id=user.id, details={"kind": kind, "name": name[:200]}))
            return LoginResult(token=token, actor=to_actor(user), expires_at=expires)
    raise AuthFailed(REFUSED)  # after the commit, so the audit entry stays


def _find_user(s, login_name: str) -> User | None:  # noqa: ANN001
    return s.scalars(select(User).where(or_(User.username == login_name,
                                            func.lower(User.email) == login_name.lower()))).first()


def actor_for_token(catalog, token: str | None) -> Actor | None:  # noqa: ANN001
    """The user behind a live session or API token, or None (expired, revoked, unknown, disabled)."""
    if not token:
        return None
    now = utcnow()
    with catalog.session() as s:
        row = s.execute(
            select(AuthSession, User).join(User, User.id == AuthSession.user_id)
            .where(AuthSession.token_hash == token_hash(token))
        ).first()
        if row is None:
            return None
        sess, user = row
        if sess.revoked_at is not None or sess.expires_at <= now or not user.is_active:
            return None
        if sess.last_seen_at is None or now - sess.last_seen_at > timedelta(minutes=1):
            sess.last_seen_at = now
        return to_actor(user)


def logout(catalog, token: str | None) -> None:  # noqa: ANN001
    if not token:
        return
    with catalog.session() as s:
        sess = s.scalars(select(AuthSession).where(AuthSession.token_hash == token_hash(token))).first()
        if sess is not None and sess.revoked_at is None:
            sess.revoked_at = utcnow()
            s.add(AuditEntry(user_id=sess.user_id, action="logout", target_type="user", target_id=sess.user_id))


def revoke_all(session, user_id: int, keep_token: str | None = None) -> int:  # noqa: ANN001
    """Revoke every live session/token of a user (password change, disable); returns how many."""
    q = update(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
    if keep_token:
        q = q.where(AuthSession.token_hash != token_hash(keep_token))
    return session.execute(q.values(revoked_at=utcnow())).rowcount
