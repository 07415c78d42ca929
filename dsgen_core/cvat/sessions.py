"""Login tokens a process obtained from CVAT servers, reused by its later connections with the same credentials.

A CVAT login costs a password hash on the server (hundreds of milliseconds): jobs that connect again reuse the
token while CVAT accepts it (the connection's check says so; on 401 the client logs in afresh). Kept in memory
only, keyed by a hash of the password, so another password never gets this token.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass

__all__ = ["Session", "forget", "recall", "remember"]

MAX_AGE = 12 * 3600.0  # seconds a token is reused before logging in again


@dataclass(frozen=True)
class Session:
    key: str
    created: float


_lock = threading.Lock()
_sessions: dict[tuple[str, ...], Session] = {}


def _id(origin: str, org: str | None, kind: str, username: str, secret: str) -> tuple[str, ...]:
    return (origin, org or "", kind, username, hashlib.sha256(secret.encode()).hexdigest())


def recall(origin: str, org: str | None, kind: str, username: str, secret: str) -> Session | None:
    with _lock:
        found = _sessions.get(_id(origin, org, kind, username, secret))
    return found if found is not None and time.monotonic() - found.created < MAX_AGE else None


def remember(origin: str, org: str | None, kind: str, username: str, secret: str, key: str) -> None:
    with _lock:
        _sessions[_id(origin, org, kind, username, secret)] = Session(key, time.monotonic())


def forget(origin: str, org: str | None, kind: str, username: str, secret: str) -> None:
    with _lock:
        _sessions.pop(_id(origin, org, kind, username, secret), None)
