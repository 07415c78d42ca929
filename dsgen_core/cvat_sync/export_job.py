"""The export job: subset → COCO → project → tasks → images → annotations, resumable at every step.

Each task row moves planned → creating → created → uploading → data → done (`export_steps`). "creating" is
committed before any CVAT call, so a create whose answer (or whose recorded id) is lost is found again by name;
the later states are written behind, in order, and flushed before the job ends, so a killed worker or a retried
job continues the same tasks. Tasks overlap: CVAT builds and imports task k while task k+1's images upload.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from dsgen_core.catalog.cvat_models import CvatConnection, CvatExport, CvatExportTask
from dsgen_core.catalog.models import AuditEntry, DatasetVersion, Job, utcnow
from dsgen_core.cvat_sync.export_steps import create_task, finish, send_images
from dsgen_core.cvat_sync.job_context import SharedContext
from dsgen_core.jobs.queue import JobContext

if TYPE_CHECKING:
    from dsgen_core.app import App
    from dsgen_core.cvat import CvatClient, LabelSpec, Project
    from dsgen_core.cvat_sync.task_files import TaskFiles

FINISHERS = 2  # tasks CVAT may be building / importing in the background while the next images upload


def _finishers() -> int:
    """DSGEN_CVAT_FINISHERS overrides FINISHERS; 0 finishes each task before the next one's images go up."""
    return int(os.environ.get("DSGEN_CVAT_FINISHERS") or FINISHERS)


def _load(app: App, export_id: int) -> tuple[CvatExport, list[CvatExportTask], CvatConnection, str, set[int]]:
    """The record, RUNNING; its planned tasks become "creating" in the same commit, before any CVAT call: a
    task whose create answer is lost is then looked up by name on resume. Returns also the ids of the rows this
    run marked (it creates them directly)."""
    with app.catalog.session() as s:
        e = s.get(CvatExport, export_id)
        e.status, e.error, e.finished_at = "RUNNING", None, None
        tasks = list(s.scalars(select(CvatExportTask).where(CvatExportTask.export_id == export_id)
                               .order_by(CvatExportTask.part)))
        marked = {t.id for t in tasks if t.state == "planned"}
        for t in tasks:
            if t.id in marked:
                t.state = "creating"
        conn = s.get(CvatConnection, e.connection_id) if e.connection_id else None
        if conn is None:
            raise ValueError("the CVAT connection of this export was deleted; add it again and start a new export")
        v = s.get(DatasetVersion, e.version_id)
        folder = str(app.settings.lake_root / v.lake_path)
    return e, tasks, conn, folder, marked


def _connect(app: App, conn: CvatConnection, e: CvatExport) -> tuple[CvatClient, Project | None, list[LabelSpec] | None]:
    """The client, and the export's project with its labels if CVAT has it (by recorded id, else by name): what
    needs no labels of ours, done while the lake is read."""
    from dsgen_core.cvat import CvatNotFound
    from dsgen_core.cvat_sync.connections import client_for

    client = client_for(app, conn)
    try:
        project = None
        if e.project_id is not None:
            try:
                project = client.get_project(e.project_id)
            except CvatNotFound:
                project = None
        if project is None:
            project = next(iter(client.list_projects(e.project_name)), None)
        return client, project, client.project_labels(project.id) if project else None
    except BaseException:
        client.close()
        raise


def _project(ctx: SharedContext, client: CvatClient, e: CvatExport, labels: list[LabelSpec],
             summary: dict[str, Any], project: Project | None, existing: list[LabelSpec] | None) -> int:
    """The project's id (created with our labels if CVAT has none of that name); CvatLabelMismatch unless its
    labels take every label, attribute and shape we send."""
    from dsgen_core.cvat import CvatLabelMismatch, coco_problems, label_problems

    if project is None or existing is None:
        project, existing = client.create_project(e.project_name, labels), list(labels)
        ctx.log(f"project {e.project_name!r}: created id {project.id}")
    problems = label_problems(existing, labels) or coco_problems(summary, existing)
    if problems:
        raise CvatLabelMismatch(f"CVAT project {e.project_name!r} (id {project.id}) has labels that do not match "
                                "ours: " + "; ".join(problems), problems)
    ctx.later(_save_project, ctx.app, e.id, project.id, [lab.name for lab in existing])  # found by name if lost
    return project.id


def _save_project(app: App, export_id: int, project_id: int, labels: list[str]) -> None:
    with app.catalog.session() as s:
        row = s.get(CvatExport, export_id)
        row.project_id, row.labels = project_id, labels


def run_export(app: App, ctx: JobContext) -> dict[str, Any]:
    """Export the planned tasks; the per-task COCO files are written in a thread while the images upload, and
    the catalog writes go behind (SharedContext), flushed before the record says DONE or FAILED."""
    export_id = int(ctx.params["export_id"])
    e, tasks, conn, folder, marked = _load(app, export_id)
    shared = SharedContext(app, ctx)
    try:
        result = _run(app, shared, e, tasks, conn, folder, marked)
    except BaseException:
        shared.close(failing=True)
        raise
    shared.close()
    with app.catalog.session() as s:
        row = s.get(CvatExport, export_id)
        row.status, row.finished_at = "DONE", utcnow()
        s.add(AuditEntry(user_id=row.created_by, action="cvat.export.done", target_type="cvat_export",
                         target_id=export_id, details={"tasks": result["task_ids"], "server": row.server_url}))
    return result


def _run(app: App, ctx: SharedContext, e: CvatExport, tasks: list[CvatExportTask], conn: CvatConnection,
         folder: str, marked: set[int]) -> dict[str, Any]:
    """Everything the job does between loading its record and marking it DONE. CVAT's connection is opened
    while the lake is read, and each task's files are prepared while CVAT answers."""
    from dsgen_core.cvat import labels_from_coco
    from dsgen_core.cvat_sync.orientation import ROTATE
    from dsgen_core.cvat_sync.outgoing import oriented_images
    from dsgen_core.cvat_sync.subset import coco_summary, subset_tables, write_part
    from dsgen_core.cvat_sync.task_files import TaskFiles
    from dsgen_core.lake.store import read_tables

    connecting = ThreadPoolExecutor(1, thread_name_prefix="cvat-connect")
    client = connecting.submit(_connect, app, conn, e)
    connecting.shutdown(wait=False)
    try:
        ctx.stage("writing COCO")
        sub = subset_tables(read_tables(Path(folder)), [i for t in tasks for i in t.image_ids])  # the lake, once
        summary = coco_summary(sub)
        labels = labels_from_coco(summary)
        turned = oriented_images(app.storage, sub.images) if e.exif_remedy == ROTATE else {}
        ctx.check_cancel()
        with tempfile.TemporaryDirectory(dir=app.settings.tmp_root, prefix="cvat-export-") as tmp, \
                ThreadPoolExecutor(1, thread_name_prefix="cvat-coco") as writer:
            files = TaskFiles(app.storage, sub, tasks, turned, Path(tmp), e.send_references)
            parts: dict[int, Future[Path]] = {}
            if e.preload_annotations:
                first = next((t for t in tasks if t.state != "done"), None)
                for t in tasks:
                    if t.state != "done":  # after the first upload's files: that is what the next minutes wait on
                        parts[t.id] = writer.submit(_after, files, first, write_part, sub, t.image_ids, t.frame_names,
                                                    Path(tmp) / f"task-{t.part}.json", turned)
            try:
                _export_tasks(ctx, e, tasks, conn, client, summary, labels, parts, files, marked)
            finally:
                for f in parts.values():
                    f.cancel()
                files.close()
    finally:
        _close(client)
    return {"export_id": e.id, "task_ids": [t.task_id for t in tasks], "links": [t.url for t in tasks]}


def _after(files: TaskFiles, first: CvatExportTask | None, fn: Callable[..., Path], *args: Any) -> Path:
    """`fn(*args)` once the first task's files are ready (or failed: the upload reports that)."""
    if first is not None:
        files.ready(first)
    return fn(*args)


def _close(connected: Future[tuple[CvatClient, Any, Any]]) -> None:
    try:
        connected.result()[0].close()
    except Exception:  # noqa: BLE001 - a failed connection has nothing to close; its error was raised before
        pass


def _export_tasks(ctx: SharedContext, e: CvatExport, tasks: list[CvatExportTask], conn: CvatConnection,
                  connected: Future[tuple[CvatClient, Project | None, list[LabelSpec] | None]],
                  summary: dict[str, Any], labels: list[LabelSpec],
                  parts: dict[int, Future[Path]], files: TaskFiles, marked: set[int]) -> None:
    """Project, tasks, then per task: images, wait, annotations (the COCO was checked against the labels once).

    Images go up one task after another; while task k+1's images upload, CVAT builds task k and imports
    its annotations (a background finisher). The last task finishes in the foreground, with its stages.
    """
    ctx.stage("connecting to CVAT")
    client, project, existing = connected.result()
    background = _finishers()
    with ThreadPoolExecutor(max(1, background), thread_name_prefix="cvat-finish") as pool:
        ctx.stage("creating tasks", len(tasks))
        project_id = _project(ctx, client, e, labels, summary, project, existing)
        fresh: set[int] = set()  # tasks this run created: CVAT has no data for them yet, no need to ask
        for k, t in enumerate(tasks):
            if t.state == "creating" and create_task(ctx, client, t, project_id, e.segment_size, t.id in marked):
                fresh.add(t.id)
            ctx.progress(k + 1)
            ctx.check_cancel()
        todo = [(k, t) for k, t in enumerate(tasks) if t.state != "done"]
        running: list[Future[None]] = []
        for n, (k, t) in enumerate(todo):
            label = f" (task {k + 1}/{len(tasks)})" if len(tasks) > 1 else ""
            if t.state in ("created", "uploading"):
                send_images(ctx, client, t, files.get(t), e.image_quality, label, conn.cloud_storage_id,
                            fresh=t.id in fresh)
            _raise_failed(running)
            coco = parts[t.id] if e.preload_annotations else None
            if background and n + 1 < len(todo):
                running.append(pool.submit(finish, ctx, client, t, coco, label, False))
            else:
                finish(ctx, client, t, coco, label, True)
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

