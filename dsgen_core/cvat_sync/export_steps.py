"""The steps of one CVAT task of an export, each recording its progress (so a retry resumes it).

A task row moves planned → creating → created → uploading (rq_id) → data → done. `send_images` runs in
the job's thread; `finish` (wait for CVAT, import the annotations) may run in a background thread while
the next task's images go up. Both touch the job only through a `SharedContext`, which writes behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING

from dsgen_core.catalog.cvat_models import CvatExportTask
from dsgen_core.cvat_sync.job_context import SharedContext

if TYPE_CHECKING:
    from dsgen_core.cvat import CvatClient, UploadFile

__all__ = ["create_task", "finish", "send_images"]


def create_task(ctx: SharedContext, client: CvatClient, t: CvatExportTask, project_id: int,
                segment_size: int, marked: bool) -> bool:
    """Create the task (or find the one an interrupted create made) and record its id; True when this call
    created it (so it certainly has no data yet). The row is "creating" already (committed before any CVAT
    call); `marked`: by this run, so no create can have happened before."""
    if not marked:  # an earlier run may have created it (and even sent its images) without recording its id
        n = len(t.image_ids)
        found = [x for x in client.list_tasks(project_id=project_id, name=t.name) if x.size in (0, n)]
        if found:
            task = max(found, key=lambda x: x.id)
            ctx.record(t.id, task_id=task.id, url=task.url, state="created")
            ctx.log(f"task {t.name!r}: found id {task.id} from an earlier attempt")
            t.task_id, t.url, t.state = task.id, task.url, "created"
            return False
    task = client.create_task(t.name, project_id=project_id, segment_size=segment_size)
    ctx.record(t.id, task_id=task.id, url=task.url, state="created")
    ctx.log(f"task {t.name!r}: created id {task.id} ({task.url})")
    t.task_id, t.url, t.state = task.id, task.url, "created"
    return True


def send_images(ctx: SharedContext, client: CvatClient, t: CvatExportTask, files: Sequence[UploadFile] | None,
                quality: int, label: str, cloud_storage_id: int | None = None, fresh: bool = False) -> None:
    """Get the images to CVAT without waiting for it to build the task: leaves t "uploading" (rq_id) or "data".
    Without `files`, the task's frame names are paths under CVAT's share (or cloud storage): no bytes are sent.
    A task created moments ago by this run (`fresh`) is not looked up first: it has no data yet."""
    from dsgen_core.cvat import CvatError

    n = len(t.image_ids)
    if not fresh:
        size = client.get_task(t.task_id).size  # CvatTaskDeleted if someone deleted it meanwhile
        if size == n:
            ctx.record(t.id, state="data")
            t.state = "data"
            return
        if size:
            raise ValueError(f"CVAT task {t.task_id} has {size} frames, expected {n}: delete it in CVAT and "
                             "resume, or start a new export")
    if t.state == "uploading" and t.rq_id:  # the upload was sent before; see whether CVAT finished it
        ctx.stage(f"waiting for CVAT{label}")
        try:
            client.wait(t.rq_id, on_status=lambda _st: ctx.check_cancel())
            if client.get_task(t.task_id).size == n:
                ctx.record(t.id, state="data")
                t.state = "data"
                return
        except CvatError as exc:
            ctx.log(f"earlier upload of task {t.task_id} did not finish ({type(exc).__name__}); sending again")
    if t.rq_id:  # a resend: the earlier request is no answer for this one
        ctx.record(t.id, state="uploading", rq_id=None)
    t.state, t.rq_id = "uploading", None
    if files is None:
        ctx.stage(f"attaching images from CVAT's {'cloud storage' if cloud_storage_id else 'share'}{label}")
        rq_id = client.attach_server_files(t.task_id, list(t.frame_names), image_quality=quality,
                                           cloud_storage_id=cloud_storage_id, wait=False)
        ctx.record(t.id, state="uploading", rq_id=rq_id)
        t.rq_id = rq_id
        ctx.log(f"task {t.task_id}: {n} images by reference (no bytes sent)")
        return
    ctx.stage(f"uploading images{label}", n)
    report = client.upload_images(t.task_id, files, image_quality=quality, wait=False,
                                  on_progress=lambda sent, total: ctx.progress(int(n * sent / max(total, 1))))
    ctx.record(t.id, state="uploading", rq_id=report.rq_id)
    t.rq_id = report.rq_id
    ctx.log(f"task {t.task_id}: {report.files} images, {report.bytes} bytes in {len(report.request_sizes)} "
            f"request(s)")


def finish(ctx: SharedContext, client: CvatClient, t: CvatExportTask, coco: Future[Path] | None,
           label: str, foreground: bool) -> None:
    """Wait for CVAT to build the task, import its COCO (if any), mark it done; stages only in the foreground."""
    if t.state == "uploading":
        if foreground:
            ctx.stage(f"waiting for CVAT{label}")
        client.wait(str(t.rq_id), on_status=lambda _st: ctx.check_cancel())
        ctx.record(t.id, state="data")
        t.state = "data"
    if coco is not None:
        if foreground:
            ctx.stage(f"uploading annotations{label}")
        client.upload_annotations(t.task_id, coco.result(), check_labels=False,
                                  on_status=lambda _st: ctx.check_cancel())
        if not foreground:
            ctx.log(f"task {t.task_id}: annotations imported{label}")
    ctx.record(t.id, state="done")
    t.state = "done"
