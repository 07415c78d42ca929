"""The HTTP layer under the CVAT client: one httpx.Client, retries with backoff, no cookies, no secret leaks."""

from __future__ import annotations

import functools
import logging
import random
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx

from dsgen_core.cvat.errors import CvatUnavailable, CvatWrongUrl
from dsgen_core.cvat.multipart import MultipartBody

__all__ = ["MEDIA_TYPE", "RETRY_STATUSES", "RetryPolicy", "Transport"]

log = logging.getLogger("dsgen.cvat")

RETRY_STATUSES = frozenset({429, 502, 503, 504})
# CVAT's only JSON renderer: `Accept: application/json` alone gets HTTP 406 on every endpoint.
MEDIA_TYPE = "application/vnd.cvat+json"
# Errors raised before any byte of the request reached the server: always safe to retry.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# The request may have been processed: retry only idempotent calls.
_MAYBE_SENT = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadTimeout, httpx.WriteTimeout)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: delay = min(max_delay, base_delay * 2**n) * U(0.5, 1)."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(self.max_delay, max(0.0, retry_after))
        return min(self.max_delay, self.base_delay * 2**attempt) * random.uniform(0.5, 1.0)  # noqa: S311


@functools.lru_cache(maxsize=2)
def _ssl_context(verify: bool) -> ssl.SSLContext:
    """One TLS context per process: loading the CA bundle costs tens of milliseconds for every new client
    (hundreds on a busy machine), and a context is safe to share between clients and threads."""
    return httpx.create_ssl_context(verify=verify)


def _no_cookie_jar() -> CookieJar:
    """A jar that refuses every cookie: with session cookies CVAT applies CSRF checks and POSTs fail."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def _retry_after(resp: httpx.Response) -> float | None:
    try:
        return float(resp.headers.get("Retry-After", ""))
    except ValueError:
        return None


class Transport:
    """Sends requests to one CVAT server; retries 429/502/503/504 and connection errors with backoff.

    `idempotent=False` (creating a task or project) retries only what certainly never reached the
    server (connection refused, 429), so a retry cannot create a second object.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: httpx.Timeout,
        retry: RetryPolicy,
        headers: Mapping[str, str] | None = None,
        secrets: Callable[[], list[str]] = list,
        verify: bool = True,
    ):
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise CvatWrongUrl(f"not an http(s) URL: {self.safe_url(base_url)!r}")
        if url.userinfo:
            raise CvatWrongUrl("put the username and password in Credentials, not in the URL")
        self.base = url.copy_with(path=url.path.rstrip("/") + "/", query=None, fragment=None)
        self.retry = retry
        self._secrets = secrets
        self.auth_headers: dict[str, str] = {}
        self.http = httpx.Client(
            base_url=self.base,
            timeout=timeout,
            cookies=_no_cookie_jar(),
            follow_redirects=False,
            headers={"Accept": MEDIA_TYPE, **(headers or {})},
            verify=_ssl_context(bool(verify)),
        )

    # -- helpers ------------------------------------------------------------------------------------

    @staticmethod
    def safe_url(url: str | httpx.URL) -> str:
        """The URL without user info, query or fragment (queries may carry tokens on some setups)."""
        try:
            u = httpx.URL(str(url))
            return str(u.copy_with(userinfo=b"", query=None, fragment=None))
        except Exception:  # noqa: BLE001 - only for messages
            return "<unparsable URL>"

    @property
    def origin(self) -> str:
        return str(self.base.copy_with(path="/", query=None)).rstrip("/")

    def redact(self, text: str) -> str:
        """Remove any secret that might have been echoed into `text`."""
        for s in self._secrets():
            if s:
                text = text.replace(s, "***")
        return text

    def resolve(self, url: str) -> httpx.URL:
        """An absolute URL CVAT gave us (Location, result_url), pinned to our server's scheme/host/port.

        Credentials are therefore never sent to another host, even behind a proxy that rewrites hosts.
        """
        u = httpx.URL(url)
        if not u.is_absolute_url:
            return self.base.join(url)
        return u.copy_with(scheme=self.base.scheme, host=self.base.host, port=self.base.port)

    # -- the one request method -----------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        body: MultipartBody | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = True,
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Response:
        """Send with retries; returns the final response (any status); raises CvatUnavailable."""
        if isinstance(url, str) and not url.startswith(("http://", "https://")):
            url = url.lstrip("/")  # relative to base (keeps a path prefix such as /cvat/)
        hdrs = {**self.auth_headers, **(headers or {})}
        reason = ""
        for attempt in range(self.retry.attempts):
            content: Any = None
            if isinstance(body, MultipartBody):
                content = body.chunks()
                hdrs["Content-Type"] = body.content_type
                hdrs["Content-Length"] = str(body.size)
            elif body is not None:
                content = body
            t0 = time.perf_counter()
            retry_after = None
            try:
                resp = self.http.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    content=content,
                    headers=hdrs,
                    timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
                )
            except _NOT_SENT as exc:
                reason = f"cannot connect ({type(exc).__name__})"
            except _MAYBE_SENT as exc:
                reason = f"connection lost ({type(exc).__name__})"
                if not idempotent:
                    raise CvatUnavailable(
                        f"CVAT at {self.origin}: {method} {self._path(url)} failed: {reason}; the outcome is "
                        "unknown, so it was not retried (look the object up before creating it again)"
                    ) from None
            else:
                log.debug("%s %s -> %s in %.3fs", method, self._path(url), resp.status_code,
                          time.perf_counter() - t0)
                if resp.status_code not in RETRY_STATUSES:
                    return resp
                reason = f"HTTP {resp.status_code}"
                retry_after = _retry_after(resp)
                if not idempotent and resp.status_code != 429:
                    return resp
            if attempt + 1 < self.retry.attempts:
                wait = self.retry.delay(attempt, retry_after)
                log.warning("CVAT %s %s: %s; retry %d/%d in %.2fs", method, self._path(url), reason,
                            attempt + 1, self.retry.attempts - 1, wait)
                time.sleep(wait)
        raise CvatUnavailable(
            f"CVAT at {self.origin} is unavailable: {method} {self._path(url)} failed {self.retry.attempts} "
            f"times ({reason}). Is CVAT running and is the URL right?"
        )

    def _path(self, url: str | httpx.URL) -> str:
        u = httpx.URL(str(url)) if not isinstance(url, httpx.URL) else url
        return u.path if u.is_absolute_url else "/" + str(url).split("?")[0]

    def close(self) -> None:
        self.http.close()
