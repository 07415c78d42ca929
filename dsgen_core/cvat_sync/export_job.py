"""The export job: subset → COCO → project → tasks → images → annotations, resumable at every step.

Each task row moves planned → creating → created → uploading → data → done, and its CVAT id is
committed right after CVAT answers, so a killed worker or a retried job continues the same tasks.
"""

from __future__ import annotations

import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from dsgen_core.catalog.cvat_models import CvatConnection, CvatExport, CvatExportTask
from dsgen_core.catalog.models import AuditEntry, DatasetVersion, Job, utcnow
from dsgen_core.jobs.queue import JobContext

if TYPE_CHECKING:
    from dsgen_core.app import App
    from dsgen_core.cvat import CvatClient, LabelSpec
    from dsgen_core.lake.tables import DatasetTables


def _set_task(app: App, row_id: int, **values: Any) -> None:
    """Commit a task row's progress at once: this is what makes a retry resume instead of duplicate."""
    with app.catalog.session() as s:
        row = s.get(CvatExportTask, row_id)
        for k, v in values.items():
            setattr(row, k, v)


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


def _project(app: App, ctx: JobContext, client: CvatClient, e: CvatExport, labels: list[LabelSpec],
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


def _create_task(app: App, ctx: JobContext, client: CvatClient, t: CvatExportTask, project_id: int,
                 segment_size: int) -> CvatExportTask:
    if t.state == "creating":  # the create may have happened without us hearing the answer
        found = [x for x in client.list_tasks(project_id=project_id, name=t.name) if x.size == 0]
        if found:
            task = max(found, key=lambda x: x.id)
            _set_task(app, t.id, task_id=task.id, url=task.url, state="created")
            ctx.log(f"task {t.name!r}: found id {task.id} from an earlier attempt")
            t.task_id, t.url, t.state = task.id, task.url, "created"
            return t
    _set_task(app, t.id, state="creating")
    task = client.create_task(t.name, project_id=project_id, segment_size=segment_size)
    _set_task(app, t.id, task_id=task.id, url=task.url, state="created")
    ctx.log(f"task {t.name!r}: created id {task.id} ({task.url})")
    t.task_id, t.url, t.state = task.id, task.url, "created"
    return t


def _upload(app: App, ctx: JobContext, client: CvatClient, t: CvatExportTask, paths: list, quality: int,
            label: str) -> None:
    from dsgen_core.cvat import CvatError, UploadFile

    n = len(t.image_ids)
    task = client.get_task(t.task_id)  # CvatTaskDeleted if someone deleted it meanwhile
    if task.size == n:
        _set_task(app, t.id, state="data")
        return
    if task.size:
        raise ValueError(f"CVAT task {t.task_id} has {task.size} frames, expected {n}: delete it in CVAT and "
                         "resume, or start a new export")
    if t.state == "uploading" and t.rq_id:  # the upload was sent before; see whether CVAT finished it
        ctx.stage(f"waiting for CVAT{label}")
        try:
            client.wait(t.rq_id, on_status=lambda _st: ctx.check_cancel())
            if client.get_task(t.task_id).size == n:
                _set_task(app, t.id, state="data")
                return
        except CvatError as exc:
            ctx.log(f"earlier upload of task {t.task_id} did not finish ({type(exc).__name__}); sending again")
    _set_task(app, t.id, state="uploading", rq_id=None)
    ctx.stage(f"uploading images{label}", n)
    files = [UploadFile(name, path) for name, path in zip(t.frame_names, paths, strict=True)]
    report = client.upload_images(t.task_id, files, image_quality=quality, wait=False,
                                  on_progress=lambda sent, total: ctx.progress(int(n * sent / max(total, 1))))
    _set_task(app, t.id, rq_id=report.rq_id)
    ctx.log(f"task {t.task_id}: {report.files} images, {report.bytes} bytes in {len(report.request_sizes)} "
            f"request(s)")
    ctx.stage(f"waiting for CVAT{label}")
    client.wait(report.rq_id, on_status=lambda _st: ctx.check_cancel())
    _set_task(app, t.id, state="data")


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


def _export_tasks(app: App, ctx: JobContext, e: CvatExport, tasks: list[CvatExportTask], conn: CvatConnection,
                  sub: DatasetTables, summary: dict[str, Any], labels: list[LabelSpec],
                  parts: dict[int, Future[Path]]) -> None:
    """Project, tasks, then per task: images, wait, annotations (the COCO was checked against the labels once)."""
    from dsgen_core.cvat_sync.connections import client_for
    from dsgen_core.cvat_sync.subset import image_paths

    ctx.stage("connecting to CVAT")
    with client_for(conn) as client:
        ctx.stage("creating tasks", len(tasks))
        project_id = _project(app, ctx, client, e, labels, summary)
        for k, t in enumerate(tasks):
            if t.state in ("planned", "creating"):
                _create_task(app, ctx, client, t, project_id, e.segment_size)
            ctx.progress(k + 1)
            ctx.check_cancel()
        for k, t in enumerate(tasks):
            label = f" (task {k + 1}/{len(tasks)})" if len(tasks) > 1 else ""
            if t.state in ("created", "uploading"):
                paths = image_paths(app.storage, sub, t.image_ids)
                _upload(app, ctx, client, t, paths, e.image_quality, label)
                t.state = "data"
            if t.state == "data":
                if e.preload_annotations:
                    ctx.stage(f"uploading annotations{label}")
                    client.upload_annotations(t.task_id, parts[t.id].result(), check_labels=False,
                                              on_status=lambda _st: ctx.check_cancel())
                _set_task(app, t.id, state="done")
                t.state = "done"
            ctx.check_cancel()


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

