"""The core of the CVAT client: connecting (version detection, authentication) and checking answers.

The REST calls themselves live in one mixin per concern (`projects`, `polling`, `images`, `annotations`);
`client.CvatClient` puts them together.
"""

from __future__ import annotations

import base64
import json as jsonlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Self

import httpx

from dsgen_core.cvat import sessions
from dsgen_core.cvat.errors import (
    CvatAuthError,
    CvatError,
    CvatHttpError,
    CvatNotAcceptable,
    CvatNotFound,
    CvatTaskDeleted,
    CvatUnavailable,
    CvatUnsupportedVersion,
    CvatWrongUrl,
)
from dsgen_core.cvat.models import Credentials, ServerInfo
from dsgen_core.cvat.transport import MEDIA_TYPE, RETRY_STATUSES, RetryPolicy, Transport
from dsgen_core.cvat.versions import Features, ServerVersion

__all__ = ["COCO", "ClientBase", "PollPolicy"]

log = logging.getLogger("dsgen.cvat")

COCO = "COCO 1.0"


@dataclass(frozen=True)
class PollPolicy:
    """How `wait` polls an asynchronous request: growing intervals, an overall deadline.

    The first polls come quickly (small tasks finish in tens of milliseconds, and CVAT shows each request
    as queued, then started, before finished); the interval then grows (at most ×`factor` per poll) to
    `maximum`, but never beyond `overshoot` × the time already waited, so a late poll costs at most that
    fraction of the wait (a fixed ×1.5 backoff could add half of it).
    """

    initial: float = 0.01
    factor: float = 1.5
    maximum: float = 5.0
    timeout: float = 6 * 3600.0
    overshoot: float = 0.05

    def next_interval(self, interval: float, waited: float) -> float:
        """The sleep before the next poll, after `waited` seconds of waiting and a last sleep of `interval`."""
        return min(self.maximum, interval * self.factor, max(self.initial, waited * self.overshoot))


DEFAULT_RETRY = RetryPolicy()
DEFAULT_POLL = PollPolicy()
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class ClientBase:
    """Connection, authentication and response checking shared by every group of REST calls."""

    def __init__(
        self,
        url: str,
        credentials: Credentials,
        *,
        org: str | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        poll: PollPolicy = DEFAULT_POLL,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_request_bytes: int = 16 << 20,
        max_files_per_request: int = 100,
        tus_chunk_bytes: int = 8 << 20,
        upload_connections: int = 3,
        verify: bool = True,
    ):
        self.credentials = credentials
        self.org = org
        self.poll = poll
        self.max_request_bytes = max_request_bytes
        self.max_files_per_request = max_files_per_request
        self.tus_chunk_bytes = min(tus_chunk_bytes, max_request_bytes)
        # batches of one upload in flight at once: CVAT stores each file as it arrives, so a second and
        # third connection keep it busy while one request waits on its disk or our reads
        self.upload_connections = max(1, upload_connections)
        headers = {"X-Organization": org} if org else {}
        self._t = Transport(
            url,
            timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
            retry=retry,
            headers=headers,
            secrets=self._secrets,
            verify=verify,
        )
        self._key = ""
        self.server: ServerInfo | None = None
        self.features: Features | None = None

    def __repr__(self) -> str:
        return f"CvatClient({self._t.origin!r}, {self.credentials})"

    def _secrets(self) -> list[str]:
        return [self.credentials.secret, self._key]
    # -- connecting -----------------------------------------------------------------------------------

    @classmethod
    def connect(cls, url: str, credentials: Credentials, **kwargs: Any) -> Self:
        """Detect the server version, authenticate and check the credentials with one authorized call."""
        client = cls(url, credentials, **kwargs)
        try:
            client.open()
        except BaseException:
            client.close()
            raise
        return client

    def open(self) -> None:
        """Version, authentication, one authorized check. A login token this process obtained before with the same
        credentials is reused while CVAT accepts it (a login costs CVAT a password hash)."""
        c = self.credentials
        who = (self.base_url, self.org, c.kind, c.username, c.secret)
        known = sessions.recall(*who) if c.kind == "login" else None
        if known is not None:
            self._token(known.key)
        about = self._about()
        if about is None and known is not None:  # /about wants credentials and refused the old token
            self._forget(who)
            known = None
            self._authenticate(None)
            about = self._about()
        elif about is None:  # this server wants credentials even for /about
            self._authenticate(None)
            about = self._about()
        if about is None:
            raise CvatAuthError(f"CVAT at {self.base_url} refused the credentials (HTTP 401)")
        self._use(about)
        if not self._t.auth_headers:
            self._authenticate(self.features)
        resp = self._t.request("GET", "api/users/self")
        if resp.status_code == 401 and known is not None:  # the token was revoked or expired: log in afresh
            self._forget(who)
            known = None
            self._authenticate(self.features)
            resp = self._t.request("GET", "api/users/self")
        if resp.status_code in (401, 403):
            raise CvatAuthError(
                f"CVAT at {self.base_url} refused the credentials {self.credentials} (HTTP {resp.status_code})"
            )
        self._check(resp, "check the credentials")
        if c.kind == "login" and known is None:
            sessions.remember(*who, self._key)
        log.info("connected to CVAT %s at %s as %s%s", self.version, self.base_url, resp.json().get("username", "?"),
                 " (login reused)" if known is not None else "")

    def _token(self, key: str) -> None:
        self._key = key
        self._t.auth_headers = {"Authorization": f"Token {key}"}

    def _forget(self, who: tuple[Any, ...]) -> None:
        sessions.forget(*who)
        self._t.auth_headers, self._key = {}, ""

    def _use(self, about: dict[str, Any]) -> None:
        version = ServerVersion.parse(str(about.get("version", "")))
        self.features = Features.of(version)
        self.server = ServerInfo(self.base_url, str(about.get("name", "CVAT")), str(version))

    def _about(self) -> dict[str, Any] | None:
        resp = self._t.request("GET", "api/server/about")
        if resp.status_code == 401:
            return None
        if resp.status_code in RETRY_STATUSES or resp.status_code >= 500:
            raise CvatUnavailable(f"CVAT at {self.base_url} is not working: /api/server/about answered "
                                  f"HTTP {resp.status_code}")
        if resp.status_code == 406:
            raise self._not_acceptable(resp, "read its version")
        try:
            about = resp.json() if resp.status_code == 200 else None
        except ValueError:
            about = None
        if not isinstance(about, dict) or "version" not in about:
            raise CvatWrongUrl(
                f"{self.base_url} does not look like a CVAT server: GET /api/server/about answered "
                f"HTTP {resp.status_code} without a CVAT version. Check the URL (scheme, host, port, path)."
            )
        return about

    def _authenticate(self, features: Features | None) -> None:
        c = self.credentials
        if c.kind == "basic":
            raw = base64.b64encode(f"{c.username}:{c.secret}".encode()).decode()
            self._t.auth_headers = {"Authorization": f"Basic {raw}"}
        elif c.kind == "token":
            self._key = c.secret
            self._t.auth_headers = {"Authorization": f"Token {c.secret}"}
        elif c.kind == "pat":
            if features is not None and not features.personal_access_tokens:
                raise CvatUnsupportedVersion(
                    f"personal access tokens need CVAT 2.48 or newer; this server is {features.version}. "
                    "Use a username and password instead."
                )
            self._t.auth_headers = {"Authorization": f"Bearer {c.secret}"}
        elif c.kind == "login":
            resp = self._t.request("POST", "api/auth/login", json={"username": c.username, "password": c.secret})
            if resp.status_code in (400, 401, 403):
                raise CvatAuthError(
                    f"CVAT at {self.base_url} rejected the login of user {c.username!r}: wrong username or password"
                )
            self._check(resp, "log in")
            key = str(resp.json().get("key", ""))
            if not key:
                raise CvatAuthError(f"CVAT at {self.base_url} answered the login without a token")
            self._token(key)
        else:
            raise ValueError(f"unknown credentials kind {c.kind!r}")

    @property
    def base_url(self) -> str:
        return str(self._t.base).rstrip("/")

    @property
    def version(self) -> ServerVersion:
        return self._features.version

    @property
    def _features(self) -> Features:
        if self.features is None:
            raise CvatError("not connected: call CvatClient.connect(...) or open() first")
        return self.features

    def close(self) -> None:
        self._t.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
    # -- response checking ----------------------------------------------------------------------------

    def _detail(self, resp: httpx.Response) -> str:
        text = resp.text.strip()
        try:
            text = jsonlib.dumps(resp.json(), ensure_ascii=False)
        except ValueError:
            pass
        text = " ".join(text.split())[:300]
        return f": {self._t.redact(text)}" if text else ""

    def _not_acceptable(self, resp: httpx.Response, what: str) -> CvatNotAcceptable:
        return CvatNotAcceptable(
            f"CVAT at {self.base_url} refused to {what}: HTTP 406{self._detail(resp)}. CVAT answers only "
            f"'Accept: {MEDIA_TYPE}' and this request's Accept header ({resp.request.headers.get('Accept')!r}) "
            "did not admit it: a client or proxy problem, not a wrong URL"
        )

    def _check(self, resp: httpx.Response, what: str, ok: Sequence[int] = (200,), task_id: int | None = None
               ) -> httpx.Response:
        s = resp.status_code
        if s in ok:
            return resp
        if s == 406:
            raise self._not_acceptable(resp, what)
        detail = self._detail(resp)
        if s == 401:
            raise CvatAuthError(f"CVAT refused the credentials {self.credentials} while trying to {what} (HTTP 401)")
        if s == 404 and task_id is not None:
            raise CvatTaskDeleted(
                f"CVAT task {task_id} does not exist at {self.base_url} (deleted in CVAT?): could not {what}",
                task_id,
            )
        if s == 404:
            raise CvatNotFound(f"CVAT could not {what}: not found (HTTP 404){detail}", 404)
        if s == 410:
            v = self.features.version if self.features else "?"
            raise CvatHttpError(f"CVAT {v} removed the endpoint used to {what} (HTTP 410)", 410)
        if s in RETRY_STATUSES or s >= 500:
            raise CvatUnavailable(f"CVAT failed to {what}: HTTP {s}{detail}")
        raise CvatHttpError(f"CVAT refused to {what}: HTTP {s}{detail}", s)

    def _pages(self, path: str, params: dict[str, Any], what: str) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            resp = self._check(self._t.request("GET", path, params={**params, "page": page, "page_size": 100}), what)
            body = resp.json()
            yield from body.get("results", [])
            if not body.get("next"):
                return
            page += 1

    def _rq_id(self, resp: httpx.Response, what: str) -> str:
        try:
            return str(resp.json()["rq_id"])
        except (ValueError, KeyError, TypeError):
            raise CvatHttpError(f"CVAT accepted the request to {what} but returned no rq_id", resp.status_code
                                ) from None
