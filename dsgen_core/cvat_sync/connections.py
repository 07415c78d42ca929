"""Opening a CVAT client from a stored connection; timing knobs come from the environment (tests speed them up)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from dsgen_core.catalog.cvat_models import CvatConnection
from dsgen_core.cvat import Credentials, CvatClient, PollPolicy, RetryPolicy

if TYPE_CHECKING:
    from dsgen_core.app import App


def credentials_of(kind: str, username: str, secret: str) -> Credentials:
    if kind == "login":
        return Credentials.login(username, secret)
    if kind == "basic":
        return Credentials.basic(username, secret)
    if kind == "token":
        return Credentials.token(secret)
    if kind == "pat":
        return Credentials.access_token(secret)
    raise ValueError(f"unknown CVAT credentials kind {kind!r}")


def _floats(name: str) -> list[float] | None:
    raw = os.environ.get(name)
    return [float(x) for x in raw.split(",")] if raw else None


def client_options() -> dict[str, Any]:
    """DSGEN_CVAT_POLL="initial,maximum", DSGEN_CVAT_RETRY="attempts,base,max", DSGEN_CVAT_TIMEOUT (s) and the
    upload bounds DSGEN_CVAT_MAX_REQUEST_BYTES / DSGEN_CVAT_MAX_FILES (a proxy's limits) and
    DSGEN_CVAT_UPLOAD_CONNECTIONS (image batches in flight at once) override the defaults."""
    opts: dict[str, Any] = {}
    if poll := _floats("DSGEN_CVAT_POLL"):
        opts["poll"] = PollPolicy(initial=poll[0], maximum=poll[1] if len(poll) > 1 else poll[0])
    if retry := _floats("DSGEN_CVAT_RETRY"):
        opts["retry"] = RetryPolicy(attempts=int(retry[0]), base_delay=retry[1], max_delay=retry[2])
    if timeout := _floats("DSGEN_CVAT_TIMEOUT"):
        opts["timeout"] = timeout[0]
    for env, key in (("DSGEN_CVAT_MAX_REQUEST_BYTES", "max_request_bytes"), ("DSGEN_CVAT_MAX_FILES",
                                                                             "max_files_per_request"),
                     ("DSGEN_CVAT_UPLOAD_CONNECTIONS", "upload_connections")):
        if os.environ.get(env):
            opts[key] = int(os.environ[env])
    return opts


def open_client(url: str, org: str | None, kind: str, username: str, secret: str, **kwargs: Any) -> CvatClient:
    return CvatClient.connect(url, credentials_of(kind, username, secret), org=org or None,
                              **{**client_options(), **kwargs})


def client_for(app: App, conn: CvatConnection, **kwargs: Any) -> CvatClient:
    """A client logged in with the connection's secret, decrypted here and handed to the client only."""
    from dsgen_core.cvat_sync.secret_store import secret_of

    return open_client(conn.url, conn.org, conn.auth_kind, conn.username, secret_of(app, conn), **kwargs)
