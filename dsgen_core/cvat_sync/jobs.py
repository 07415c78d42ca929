"""Registers the CVAT job kinds cheaply: the job modules (pyarrow, pycocotools, httpx) load only when a job runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dsgen_core.jobs.queue import JobContext, JobKind, register

if TYPE_CHECKING:
    from dsgen_core.app import App
    from dsgen_core.catalog.models import Job

EXPORT = "cvat.export"
PULL = "cvat.pull"


def _run_export(app: App, ctx: JobContext) -> dict[str, Any]:
    from dsgen_core.cvat_sync.export_job import run_export

    return run_export(app, ctx)


def _fail_export(app: App, job: Job, message: str) -> None:
    from dsgen_core.cvat_sync.export_job import fail_export

    fail_export(app, job, message)


def _run_pull(app: App, ctx: JobContext) -> dict[str, Any]:
    from dsgen_core.cvat_sync.pull import run_pull

    return run_pull(app, ctx)


def _fail_pull(app: App, job: Job, message: str) -> None:
    from dsgen_core.cvat_sync.pull import fail_pull

    fail_pull(app, job, message)


register(JobKind(EXPORT, _run_export, _fail_export))
register(JobKind(PULL, _run_pull, _fail_pull))
