"""Waiting for CVAT's asynchronous work through the requests API."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import quote

from dsgen_core.cvat.base import ClientBase
from dsgen_core.cvat.errors import CvatRequestFailed, CvatUnavailable
from dsgen_core.cvat.models import RequestStatus

__all__ = ["PollingMixin"]


class PollingMixin(ClientBase):
    """`request_status` and `wait`: poll with growing intervals instead of holding a request open."""

    # -- asynchronous requests ------------------------------------------------------------------------

    def request_status(self, rq_id: str) -> RequestStatus:
        resp = self._t.request("GET", f"api/requests/{quote(rq_id, safe='')}")
        d = self._check(resp, f"get the status of request {rq_id!r}").json()
        return RequestStatus(rq_id, str(d.get("status", "")).lower(), str(d.get("message") or ""),
                             d.get("progress"), d.get("result_url"))

    def wait(self, rq_id: str, on_status: Callable[[RequestStatus], None] | None = None,
             timeout: float | None = None) -> RequestStatus:
        """Poll until finished (returned) or failed (CvatRequestFailed); growing intervals, no open request."""
        start = time.monotonic()
        deadline = start + (timeout if timeout is not None else self.poll.timeout)
        interval = self.poll.initial
        while True:
            st = self.request_status(rq_id)
            if on_status is not None:
                on_status(st)
            if st.status == "finished":
                return st
            if st.status == "failed":
                raise CvatRequestFailed(
                    self._t.redact(f"CVAT request {rq_id!r} failed: {st.message or 'no message'}"), rq_id
                )
            if time.monotonic() + interval > deadline:
                raise CvatUnavailable(f"CVAT request {rq_id!r} still {st.status} after the time limit")
            time.sleep(interval)
            interval = self.poll.next_interval(interval, time.monotonic() - start)
