"""Annotations: import COCO 1.0 into a task, export a task and download the result."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from dsgen_core.cvat.base import COCO
from dsgen_core.cvat.errors import CvatHttpError, CvatLabelMismatch, CvatNotFound, CvatUnavailable
from dsgen_core.cvat.labels import coco_problems, read_coco
from dsgen_core.cvat.models import RequestStatus, UploadFile
from dsgen_core.cvat.multipart import MultipartBody
from dsgen_core.cvat.polling import PollingMixin
from dsgen_core.cvat.projects import ProjectsMixin
from dsgen_core.cvat.transport import RETRY_STATUSES
from dsgen_core.cvat.tus import tus_upload

__all__ = ["AnnotationsMixin"]


class AnnotationsMixin(ProjectsMixin, PollingMixin):
    """COCO import (multipart or TUS, by server version), export requests and their download."""

    # -- annotations ----------------------------------------------------------------------------------

    def check_coco_for_task(self, task_id: int, coco: Path | bytes | dict[str, Any]) -> None:
        """CvatLabelMismatch if CVAT would reject or silently drop part of the COCO (unknown labels, attributes)."""
        doc = coco if isinstance(coco, dict) else read_coco(coco)
        problems = coco_problems(doc, self.task_labels(task_id))
        if problems:
            raise CvatLabelMismatch(
                f"the annotations do not fit the labels of CVAT task {task_id}: " + "; ".join(problems[:20]),
                problems,
            )

    def upload_annotations(
        self,
        task_id: int,
        coco: Path | bytes,
        *,
        filename: str = "instances_default.json",
        method: str = "auto",
        check_labels: bool = True,
        wait: bool = True,
        on_status: Callable[[RequestStatus], None] | None = None,
    ) -> str:
        """Import COCO 1.0 (a .json or export .zip) into a task; CVAT replaces the task's annotations.

        A path is streamed from disk (read whole only for `check_labels`; skip it when the caller already
        checked the document against the labels). method: "auto" (one request if within
        `max_request_bytes`, else TUS), "tus", or "multipart" (PUT before CVAT 2.38, POST from 2.38).
        Returns the rq_id (already finished when `wait`).
        """
        if isinstance(coco, (str, Path)):
            f = UploadFile(filename, path=Path(coco))
        else:
            f = UploadFile(filename, data=coco if isinstance(coco, bytes) else bytes(coco))
        if check_labels:
            self.check_coco_for_task(task_id, f.data if f.data is not None else f.path)  # type: ignore[arg-type]
        what = f"import annotations into task {task_id}"
        body = MultipartBody([], [("annotation_file", f)])
        if method == "auto":
            method = "multipart" if body.size <= self.max_request_bytes else "tus"
        params = {"format": COCO}
        if method == "multipart":
            verb = self._features.annotations_import_method
            resp = self._t.request(verb, f"api/tasks/{task_id}/annotations", params=params, body=body)
            rq_id = self._rq_id(self._check(resp, what, (201, 202), task_id), what)
        elif method == "tus":
            endpoint = f"api/tasks/{task_id}/annotations/"
            resp = self._t.request("POST", endpoint, params=params, headers={"Upload-Start": "true"})
            self._check(resp, what, (202,), task_id)
            tus_upload(self._t, endpoint, f, self.tus_chunk_bytes)
            resp = self._t.request("POST", endpoint, params={**params, "filename": filename},
                                   headers={"Upload-Finish": "true"})
            rq_id = self._rq_id(self._check(resp, what, (202,), task_id), what)
        else:
            raise ValueError("method must be 'auto', 'tus' or 'multipart'")
        if wait:
            self.wait(rq_id, on_status=on_status)
        return rq_id

    def start_export(self, task_id: int, fmt: str = COCO, save_images: bool = False) -> str:
        """Start `POST /api/tasks/{id}/dataset/export`; returns the rq_id to wait for."""
        resp = self._t.request("POST", f"api/tasks/{task_id}/dataset/export",
                               params={"format": fmt, "save_images": str(save_images).lower()})
        return self._rq_id(self._check(resp, f"export task {task_id}", (202,), task_id), "export")

    def download(self, result_url: str, dest: Path, task_id: int | None = None) -> Path:
        """Stream a finished export to `dest` (written atomically); the URL is pinned to our server."""
        dest = Path(dest)
        tmp = dest.with_name(dest.name + ".part")
        url = self._t.resolve(result_url)
        for attempt in range(self._t.retry.attempts):
            try:
                with self._t.http.stream("GET", url, headers=self._t.auth_headers) as resp:
                    if resp.status_code in RETRY_STATUSES and attempt + 1 < self._t.retry.attempts:
                        time.sleep(self._t.retry.delay(attempt))
                        continue
                    if resp.status_code != 200:
                        resp.read()
                        self._check(resp, "download the export", task_id=task_id)
                    with open(tmp, "wb") as out:
                        for block in resp.iter_bytes(1 << 20):
                            out.write(block)
                tmp.replace(dest)
                return dest
            except httpx.TransportError as exc:
                tmp.unlink(missing_ok=True)
                if attempt + 1 >= self._t.retry.attempts:
                    raise CvatUnavailable(f"CVAT at {self.base_url}: downloading the export failed "
                                          f"({type(exc).__name__})") from None
                time.sleep(self._t.retry.delay(attempt))
        raise CvatUnavailable(f"CVAT at {self.base_url}: downloading the export kept failing")

    def export_annotations(self, task_id: int, dest: Path, fmt: str = COCO) -> Path:
        """Export a task's annotations (zip with annotations/instances_default.json for COCO) to `dest`."""
        rq_id = self.start_export(task_id, fmt)
        try:
            st = self.wait(rq_id)
        except CvatNotFound:
            self.get_task(task_id)  # deleted meanwhile → CvatTaskDeleted
            raise
        if not st.result_url:
            raise CvatHttpError(f"CVAT finished exporting task {task_id} but gave no result_url", 200)
        return self.download(st.result_url, dest, task_id=task_id)

    def export_coco(self, task_id: int, dest: Path) -> dict[str, Any]:
        """Export as COCO 1.0 and return the parsed document (the zip stays at `dest`)."""
        return read_coco(self.export_annotations(task_id, dest, COCO))
