"""The export job: subset → COCO → project → tasks → images → annotations, resumable at every step.

Each task row moves planned → creating → created → uploading → data → done (`export_steps`), and its
CVAT id is committed right after CVAT answers, so a killed worker or a retried job continues the same
tasks. Tasks overlap: CVAT builds and imports task k while task k+1's images upload.
"""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from dsgen_core.catalog.cvat_models import CvatConnection, CvatExport, CvatExportTask
from dsgen_core.catalog.models import AuditEntry, DatasetVersion, Job, utcnow
from dsgen_core.cvat_sync.export_steps import SharedContext, create_task, finish, send_images
from dsgen_core.jobs.queue import JobContext

if TYPE_CHECKING:
    from dsgen_core.app import App
    from dsgen_core.cvat import CvatClient, LabelSpec
    from dsgen_core.lake.tables import DatasetTables

FINISHERS = 2  # tasks CVAT may be building / importing in the background while the next images upload


def _finishers() -> int:
    """DSGEN_CVAT_FINISHERS overrides FINISHERS; 0 finishes each task before the next one's images go up."""
    return int(os.environ.get("DSGEN_CVAT_FINISHERS") or FINISHERS)


def _load(app: App, export_id: int) -> tuple[CvatExport, list[CvatExportTask], CvatConnection, str]:
    with app.catalog.session() as s:
        e = s.get(CvatExport, export_id)
        e.status, e.error, e.finished_at = "RUNNING", None, None
        tasks = list(s.scalars(select(CvatExportTask).where(CvatExportTask.export_id == export_id)
                               .order_by(CvatExportTask.part)))
        conn = s.get(CvatConnection, e.connection_id) if e.connection_id else None
        if conn is None:
            raise ValueError("the CVAT connection of this export was deleted; add it again and start a new export")
        v = s.get(DatasetVersion, e.version_id)
        folder = str(app.settings.lake_root / v.lake_path)
    return e, tasks, conn, folder


def _project(app: App, ctx: SharedContext, client: CvatClient, e: CvatExport, labels: list[LabelSpec],
             summary: dict[str, Any]) -> int:
    """The project's id; CvatLabelMismatch unless its labels take every label, attribute and shape we send."""
    from dsgen_core.cvat import CvatLabelMismatch, CvatNotFound, coco_problems, label_problems

    project_id = e.project_id
    if project_id is not None:
        try:
            client.get_project(project_id)
        except CvatNotFound:
            project_id = None
    if project_id is None:
        project_id = client.ensure_project(e.project_name, labels).id
        ctx.log(f"project {e.project_name!r}: id {project_id}")
    existing = client.project_labels(project_id)
    problems = label_problems(existing, labels) or coco_problems(summary, existing)
    if problems:
        raise CvatLabelMismatch(f"CVAT project {e.project_name!r} (id {project_id}) has labels that do not match "
                                "ours: " + "; ".join(problems), problems)
    with app.catalog.session() as s:
        row = s.get(CvatExport, e.id)
        row.project_id = project_id
        row.labels = [lab.name for lab in existing]
    return project_id


def run_export(app: App, ctx: JobContext) -> dict[str, Any]:
    """Export the planned tasks; the per-task COCO files are written in a thread while the images upload."""
    from dsgen_core.cvat import labels_from_coco
    from dsgen_core.cvat_sync.subset import coco_summary, subset_tables, write_part
    from dsgen_core.lake.store import read_tables

    export_id = int(ctx.params["export_id"])
    e, tasks, conn, folder = _load(app, export_id)
    ctx.stage("writing COCO")
    sub = subset_tables(read_tables(Path(folder)), [i for t in tasks for i in t.image_ids])  # the lake, read once
    summary = coco_summary(sub)
    labels = labels_from_coco(summary)
    ctx.check_cancel()
    with tempfile.TemporaryDirectory(dir=app.settings.tmp_root, prefix="cvat-export-") as tmp, \
            ThreadPoolExecutor(1, thread_name_prefix="cvat-coco") as writer:
        parts: dict[int, Future[Path]] = {}
        if e.preload_annotations:
            for t in tasks:
                if t.state != "done":
                    parts[t.id] = writer.submit(write_part, sub, t.image_ids, t.frame_names,
                                                Path(tmp) / f"task-{t.part}.json")
        try:
            _export_tasks(app, ctx, e, tasks, conn, sub, summary, labels, parts)
        finally:
            for f in parts.values():
                f.cancel()
    links = [t.url for t in tasks]
    with app.catalog.session() as s:
        row = s.get(CvatExport, export_id)
        row.status, row.finished_at = "DONE", utcnow()
        s.add(AuditEntry(user_id=row.created_by, action="cvat.export.done", target_type="cvat_export",
                         target_id=export_id, details={"tasks": [t.task_id for t in tasks], "server": row.server_url}))
    return {"export_id": export_id, "task_ids": [t.task_id for t in tasks], "links": links}


def _export_tasks(app: App, job_ctx: JobContext, e: CvatExport, tasks: list[CvatExportTask], conn: CvatConnection,
                  sub: DatasetTables, summary: dict[str, Any], labels: list[LabelSpec],
                  parts: dict[int, Future[Path]]) -> None:
    """Project, tasks, then per task: images, wait, annotations (the COCO was checked against the labels once).

    Images go up one task after another; while task k+1's images upload, CVAT builds task k and imports
    its annotations (a background finisher). The last task finishes in the foreground, with its stages.
    """
    from dsgen_core.cvat_sync.connections import client_for
    from dsgen_core.cvat_sync.subset import image_paths

    ctx = SharedContext(job_ctx)
    ctx.stage("connecting to CVAT")
    background = _finishers()
    with client_for(app, conn) as client, ThreadPoolExecutor(max(1, background), thread_name_prefix="cvat-finish") as pool:
        ctx.stage("creating tasks", len(tasks))
        project_id = _project(app, ctx, client, e, labels, summary)
        for k, t in enumerate(tasks):
            if t.state in ("planned", "creating"):
                create_task(app, ctx, client, t, project_id, e.segment_size)
            ctx.progress(k + 1)
            ctx.check_cancel()
        todo = [(k, t) for k, t in enumerate(tasks) if t.state != "done"]
        running: list[Future[None]] = []
        for n, (k, t) in enumerate(todo):
            label = f" (task {k + 1}/{len(tasks)})" if len(tasks) > 1 else ""
            if t.state in ("created", "uploading"):
                paths = None if e.send_references else image_paths(app.storage, sub, t.image_ids)
                send_images(app, ctx, client, t, paths, e.image_quality, label, conn.cloud_storage_id)
            _raise_failed(running)
            coco = parts[t.id] if e.preload_annotations else None
            if background and n + 1 < len(todo):
                running.append(pool.submit(finish, app, ctx, client, t, coco, label, False))
            else:
                finish(app, ctx, client, t, coco, label, True)
            ctx.check_cancel()
        for f in running:
            f.result()


def _raise_failed(running: list[Future[None]]) -> None:
    """Stop sending images as soon as a background finisher failed (its error is the job's error)."""
    for f in running:
        if f.done() and f.exception() is not None:
            f.result()


def fail_export(app: App, job: Job, message: str) -> None:
    """The record says FAILED (or CANCELLED) with the reason; created tasks stay recorded for a resume."""
    export_id = int(job.params["export_id"])
    with app.catalog.session() as s:
        e = s.get(CvatExport, export_id)
        if e is None or e.status == "DONE":
            return
        e.status = "CANCELLED" if message == "cancelled" else "FAILED"
        e.error, e.finished_at = message, utcnow()
        s.add(AuditEntry(user_id=e.created_by, action="cvat.export.failed", target_type="cvat_export",
                         target_id=export_id, details={"error": message[:500]}))

