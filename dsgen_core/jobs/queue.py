"""Jobs as catalog rows: enqueue, claim (compare-and-set, safe with several workers), progress, recovery.

A job function gets a JobContext and reports into its row; pages and the CLI poll the row.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update

from dsgen_core.catalog.models import Job, WorkerInfo, utcnow

if TYPE_CHECKING:
    from dsgen_core.app import App

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"
FINISHED = (SUCCEEDED, FAILED, CANCELLED)
LOG_LIMIT = 20_000


class JobCancelled(Exception):
    """Raised inside a job function when a cancel was requested."""


@dataclass(frozen=True)
class JobKind:
    """A job function plus the clean-up that must run when it finally fails or is cancelled."""

    name: str
    run: Callable[[App, JobContext], dict[str, Any] | None]
    on_fail: Callable[[App, Job, str], None] | None = None


REGISTRY: dict[str, JobKind] = {}


def register(kind: JobKind) -> JobKind:
    REGISTRY[kind.name] = kind
    return kind


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class JobContext:
    """Progress, log and cancel for one running job; writes are throttled to keep the catalog calm."""

    def __init__(self, app: App, job_id: int, params: dict[str, Any], on_progress: Callable | None = None):
        self.app = app
        self.job_id = job_id
        self.params = params
        self._stage = ""
        self._processed = 0
        self._total = 0
        self._last_write = 0.0
        self._on_progress = on_progress

    def stage(self, name: str, total: int = 0) -> None:
        """Start a named stage; progress counts restart."""
        self._stage, self._processed, self._total = name, 0, total
        self.log(f"stage: {name}")
        self._write(force=True)

    def progress(self, processed: int, total: int | None = None) -> None:
        self._processed = processed
        if total is not None:
            self._total = total
        self._write()

    def log(self, message: str) -> None:
        line = f"{utcnow():%H:%M:%S} {message}\n"
        with self.app.catalog.session() as s:
            job = s.get(Job, self.job_id)
            job.log = (job.log + line)[-LOG_LIMIT:]

    def check_cancel(self) -> None:
        with self.app.catalog.session() as s:
            if s.scalar(select(Job.cancel_requested).where(Job.id == self.job_id)):
                raise JobCancelled()

    def _write(self, force: bool = False) -> None:
        if self._on_progress:
            self._on_progress(self._stage, self._processed, self._total)
        now = time.monotonic()
        if not force and now - self._last_write < 0.5:
            return
        self._last_write = now
        with self.app.catalog.session() as s:
            s.execute(
                update(Job)
                .where(Job.id == self.job_id)
                .values(stage=self._stage, processed=self._processed, total=self._total, heartbeat_at=utcnow())
            )
            cancel = s.scalar(select(Job.cancel_requested).where(Job.id == self.job_id))
        if cancel:
            raise JobCancelled()


def enqueue(app: App, kind: str, params: dict[str, Any], user_id: int | None, version_id: int | None = None) -> int:
    if kind not in REGISTRY:
        raise ValueError(f"unknown job kind {kind!r}")
    with app.catalog.session() as s:
        job = Job(kind=kind, params=params, created_by=user_id, version_id=version_id, status=QUEUED)
        s.add(job)
        s.flush()
        return job.id


def claim(app: App, worker_id: str, job_id: int | None = None) -> int | None:
    """Take the oldest queued job (or the given one); the conditional UPDATE makes two workers never share one."""
    for _ in range(5):
        with app.catalog.session() as s:
            q = select(Job.id).where(Job.status == QUEUED)
            if job_id is not None:
                q = q.where(Job.id == job_id)
            candidate = s.scalar(q.order_by(Job.id).limit(1))
            if candidate is None:
                return None
            res = s.execute(
                update(Job)
                .where(Job.id == candidate, Job.status == QUEUED)
                .values(
                    status=RUNNING,
                    worker_id=worker_id,
                    heartbeat_at=utcnow(),
                    started_at=utcnow(),
                    attempts=Job.attempts + 1,
                )
            )
            if res.rowcount == 1:
                return candidate
        if job_id is not None:
            return None
    return None


def _finish(app: App, job_id: int, status: str, error: str | None = None, result: dict | None = None) -> None:
    with app.catalog.session() as s:
        job = s.get(Job, job_id)
        job.status = status
        job.error = error
        job.result = result
        job.finished_at = utcnow()
        if status == SUCCEEDED:
            job.stage = "done"
            job.processed = max(job.processed, job.total)


def _fail_hook(app: App, job_id: int, message: str) -> None:
    with app.catalog.session() as s:
        job = s.get(Job, job_id)
    kind = REGISTRY.get(job.kind)
    if kind and kind.on_fail:
        try:
            kind.on_fail(app, job, message)
        except Exception:  # noqa: BLE001 - clean-up must not hide the original failure
            traceback.print_exc()


class _Heartbeat(threading.Thread):
    def __init__(self, app: App, job_id: int, interval: float):
        super().__init__(daemon=True)
        self.app, self.job_id, self.interval = app, job_id, interval
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(self.interval):
            try:
                with self.app.catalog.session() as s:
                    s.execute(update(Job).where(Job.id == self.job_id).values(heartbeat_at=utcnow()))
            except Exception:  # noqa: BLE001 - a missed beat is retried next interval
                pass


def run_claimed(app: App, job_id: int, on_progress: Callable | None = None) -> str:
    """Run a job this process has claimed; returns its final status."""
    with app.catalog.session() as s:
        job = s.get(Job, job_id)
        kind_name, params = job.kind, dict(job.params or {})
    kind = REGISTRY[kind_name]
    beat = _Heartbeat(app, job_id, app.heartbeat_seconds)
    beat.start()
    ctx = JobContext(app, job_id, params, on_progress)
    try:
        result = kind.run(app, ctx)
    except JobCancelled:
        _fail_hook(app, job_id, "cancelled")
        _finish(app, job_id, CANCELLED, "cancelled by user")
        return CANCELLED
    except Exception as exc:  # noqa: BLE001 - every failure is recorded on the job row
        message = f"{type(exc).__name__}: {exc}"
        try:
            ctx.log("failed: " + message)
        except Exception:  # noqa: BLE001
            pass
        _fail_hook(app, job_id, message)
        _finish(app, job_id, FAILED, message, getattr(exc, "job_result", None))
        return FAILED
    finally:
        beat.stop_event.set()
    _finish(app, job_id, SUCCEEDED, None, result)
    return SUCCEEDED


def recover_stale(app: App, stale_after: float) -> list[int]:
    """Requeue RUNNING jobs whose worker stopped beating; fail those out of attempts."""
    cutoff = utcnow() - timedelta(seconds=stale_after)
    recovered: list[int] = []
    with app.catalog.session() as s:
        stale = s.scalars(select(Job).where(Job.status == RUNNING, Job.heartbeat_at < cutoff)).all()
        plan = [(j.id, j.attempts >= j.max_attempts, j.worker_id) for j in stale]
    for job_id, exhausted, old_worker in plan:
        # Exhausted jobs stay RUNNING under a recovery marker until clean-up is done, so
        # nobody sees FAILED while the half-written version still exists.
        values = (
            {"worker_id": f"recovery-{socket.gethostname()}-{os.getpid()}", "heartbeat_at": utcnow(),
             "stage": "cleaning up after worker loss"}
            if exhausted
            else {"status": QUEUED, "worker_id": None, "stage": "recovered after worker loss"}
        )
        with app.catalog.session() as s:
            res = s.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == RUNNING, Job.worker_id == old_worker)
                .values(**values)
            )
            if res.rowcount != 1:
                continue
        if exhausted:
            message = f"worker {old_worker} stopped responding and the job is out of attempts"
            _fail_hook(app, job_id, message)
            _finish(app, job_id, FAILED, message)
        recovered.append(job_id)
    return recovered


def register_worker(app: App, worker_id: str) -> None:
    with app.catalog.session() as s:
        s.merge(WorkerInfo(id=worker_id, hostname=socket.gethostname(), pid=os.getpid(), heartbeat_at=utcnow()))


def worker_beat(app: App, worker_id: str) -> None:
    with app.catalog.session() as s:
        s.execute(update(WorkerInfo).where(WorkerInfo.id == worker_id).values(heartbeat_at=utcnow()))


def unregister_worker(app: App, worker_id: str) -> None:
    with app.catalog.session() as s:
        s.execute(delete(WorkerInfo).where(WorkerInfo.id == worker_id))


def live_workers(app: App, within: float = 15.0) -> int:
    cutoff = utcnow() - timedelta(seconds=within)
    with app.catalog.session() as s:
        return len(s.scalars(select(WorkerInfo.id).where(WorkerInfo.heartbeat_at >= cutoff)).all())


def run_worker(app: App, once: bool = False, poll: float = 0.5, stop: threading.Event | None = None) -> int:
    """The worker loop: recover abandoned jobs, claim, run; returns how many jobs ran."""
    worker_id = new_worker_id()
    register_worker(app, worker_id)
    ran = 0
    last_beat = 0.0
    try:
        while stop is None or not stop.is_set():
            if time.monotonic() - last_beat > app.heartbeat_seconds:
                worker_beat(app, worker_id)
                recover_stale(app, app.stale_seconds)
                last_beat = time.monotonic()
            job_id = claim(app, worker_id)
            if job_id is None:
                if once:
                    break
                time.sleep(poll)
                continue
            run_claimed(app, job_id)
            ran += 1
    finally:
        unregister_worker(app, worker_id)
    return ran
