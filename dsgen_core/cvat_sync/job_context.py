"""The export job's context for several threads, writing behind: its catalog writes (stage, progress, log lines,
task rows) go in order on one writer thread, so neither the uploads nor CVAT's waits ever wait for a commit.

Order is kept (one writer), so the catalog never shows a later state of a row before an earlier one (the
one write that must be durable before a CVAT call, the "creating" mark before a create, is committed with
the job's start); `flush` waits for everything (the job's end, or its failure, so a resume sees the latest
state).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from dsgen_core.catalog.cvat_models import CvatExportTask
from dsgen_core.jobs.queue import JobContext

if TYPE_CHECKING:
    from dsgen_core.app import App

__all__ = ["SharedContext", "set_task"]

CANCEL_EVERY = 0.25  # seconds between reads of the cancel flag (each poll of CVAT would otherwise read it)


def set_task(app: App, row_id: int, **values: Any) -> None:
    """Commit a task row's progress: this is what makes a retry resume instead of duplicate."""
    with app.catalog.session() as s:
        row = s.get(CvatExportTask, row_id)
        for k, v in values.items():
            setattr(row, k, v)


class SharedContext:
    """`stage`, `progress`, `log` and `record` (a task row) queue their write; `check_cancel` reads the flag at
    most every CANCEL_EVERY seconds and raises what a queued write raised (JobCancelled included)."""

    def __init__(self, app: App, ctx: JobContext):
        self.app = app
        self._ctx = ctx
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="cvat-catalog")
        self._lock = threading.Lock()
        self._pending: list[Future[None]] = []
        self._checked = 0.0

    def later(self, fn: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        """Queue any catalog write, after those queued before it."""
        with self._lock:
            self._pending = [f for f in self._pending if not f.done() or f.exception() is not None]
            self._pending.append(self._writer.submit(fn, *args, **kwargs))
        self._raise_failed()

    def _raise_failed(self) -> None:
        with self._lock:
            failed = next((f for f in self._pending if f.done() and f.exception() is not None), None)
        if failed is not None:
            failed.result()

    def stage(self, name: str, total: int = 0) -> None:
        self.later(self._ctx.stage, name, total)

    def progress(self, processed: int) -> None:
        self.later(self._ctx.progress, processed)

    def log(self, message: str) -> None:
        self.later(self._ctx.log, message)

    def record(self, row_id: int, **values: Any) -> None:
        self.later(set_task, self.app, row_id, **values)

    def check_cancel(self) -> None:
        self._raise_failed()
        now = time.monotonic()
        if now - self._checked >= CANCEL_EVERY:
            self._checked = now
            self._ctx.check_cancel()

    def flush(self) -> None:
        """Wait for every queued write; raise the first that failed."""
        with self._lock:
            pending = list(self._pending)
        for f in pending:
            f.result()
        with self._lock:
            self._pending = [f for f in self._pending if f not in pending]

    def close(self, failing: bool = False) -> None:
        """Flush and stop the writer; while the job is already failing, a write error does not hide its own."""
        try:
            self.flush()
        except Exception:
            if not failing:
                raise
        finally:
            self._writer.shutdown(wait=True)
