"""Sending a task's images: bounded multipart requests (CVAT's multi-request protocol, TUS for big files)
or references to files CVAT can read itself."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from dsgen_core.cvat.models import UploadFile, UploadReport
from dsgen_core.cvat.multipart import MultipartBody
from dsgen_core.cvat.parallel import in_parallel
from dsgen_core.cvat.polling import PollingMixin
from dsgen_core.cvat.tus import tus_upload
from dsgen_core.cvat.upload import Batch, check_names, plan_batches

__all__ = ["SORTING_METHODS", "ImagesMixin"]

SORTING_METHODS = ("lexicographical", "natural", "predefined", "random")
Progress = Callable[[int, int], None]


class ImagesMixin(PollingMixin):
    """`upload_images` and `attach_server_files`."""

    # -- images ---------------------------------------------------------------------------------------

    @staticmethod
    def _data_fields(image_quality: int, sorting_method: str, use_cache: bool) -> list[tuple[str, str]]:
        if not isinstance(image_quality, int) or not 1 <= image_quality <= 100:
            raise ValueError("image_quality must be an integer from 1 to 100")
        if sorting_method not in SORTING_METHODS:
            raise ValueError(f"sorting_method must be one of {SORTING_METHODS}")
        return [("image_quality", str(image_quality)), ("sorting_method", sorting_method),
                ("use_cache", "true" if use_cache else "false")]

    def upload_images(
        self,
        task_id: int,
        files: Sequence[UploadFile],
        *,
        image_quality: int,
        sorting_method: str = "predefined",
        use_cache: bool = True,
        wait: bool = True,
        on_progress: Progress | None = None,
    ) -> UploadReport:
        """Send the images as bytes; frame i = files[i] under "predefined" sorting.

        One multipart request when everything fits in `max_request_bytes`, otherwise CVAT's
        multi-request protocol: Upload-Start, bounded batches sent on up to `upload_connections`
        connections at once (files bigger than the bound by TUS), Upload-Finish with `upload_file_order`
        (so the frame order never depends on which batch arrived first). With `wait`, returns after the
        server built the task.
        """
        if not files:
            raise ValueError("no files to upload")
        check_names(files)
        fields = self._data_fields(image_quality, sorting_method, use_cache)
        total = sum(f.size for f in files)
        sent = 0
        report = UploadReport("", len(files), total)

        def progress(n: int) -> None:
            nonlocal sent
            sent += n
            if on_progress is not None:
                on_progress(sent, total)

        # one request only for what fits: never frame the parts of thousands of files to find that out
        fits = len(files) <= self.max_files_per_request and total <= self.max_request_bytes
        single = MultipartBody(fields, [(f"client_files[{i}]", f) for i, f in enumerate(files)]) if fits else None
        if single is not None and single.size <= self.max_request_bytes:
            resp = self._t.request("POST", f"api/tasks/{task_id}/data", body=single, idempotent=False)
            report.request_sizes.append(single.size)
            progress(total)
            report.rq_id = self._rq_id(self._check(resp, f"upload images to task {task_id}", (202,), task_id),
                                       "upload images")
        else:
            report.rq_id = self._upload_in_requests(task_id, files, fields, report, progress)
        if wait:
            self.wait(report.rq_id)
        return report

    def _upload_in_requests(self, task_id: int, files: Sequence[UploadFile], fields: list[tuple[str, str]],
                            report: UploadReport, progress: Callable[[int], None]) -> str:
        endpoint = f"api/tasks/{task_id}/data/"
        what = f"upload images to task {task_id}"
        self._check(self._t.request("POST", endpoint, headers={"Upload-Start": "true"}), what, (202,), task_id)
        # each batch carries the data fields: CVAT checks every request with its data serializer, so a batch
        # without image_quality is refused (400); the official SDK sends them with every batch too
        batches, too_big = plan_batches(files, self.max_request_bytes, self.max_files_per_request, fields=fields)

        def send(batch: Batch) -> None:  # each body is framed on the connection that sends it
            body = MultipartBody(fields, [(f"client_files[{k}]", f) for k, (_, f) in enumerate(batch.files)])
            resp = self._t.request("POST", endpoint, body=body, headers={"Upload-Multiple": "true"})
            self._check(resp, what, (200, 202), task_id)

        def done(batch: Batch) -> None:
            report.request_sizes.append(batch.size)
            progress(sum(f.size for _, f in batch.files))

        in_parallel(send, batches, self.upload_connections, done)  # batches are independent and idempotent
        for f in too_big:
            tus_upload(self._t, endpoint, f, self.tus_chunk_bytes, on_chunk=progress)
            report.tus_files += 1
        finish = {k: v for k, v in fields}
        finish["image_quality"] = int(finish["image_quality"])
        finish["use_cache"] = finish["use_cache"] == "true"
        finish["upload_file_order"] = [f.name for f in files]
        resp = self._t.request("POST", endpoint, json=finish, headers={"Upload-Finish": "true"}, idempotent=False)
        return self._rq_id(self._check(resp, what, (202,), task_id), what)

    def attach_server_files(
        self,
        task_id: int,
        paths: Sequence[str],
        *,
        image_quality: int,
        cloud_storage_id: int | None = None,
        sorting_method: str = "predefined",
        wait: bool = True,
    ) -> str:
        """Reference images CVAT can read itself (paths under its share, or keys in a cloud storage): no bytes sent."""
        body: dict[str, Any] = {k: v for k, v in self._data_fields(image_quality, sorting_method, True)}
        body["image_quality"] = image_quality
        body["use_cache"] = True
        body["server_files"] = list(paths)
        if cloud_storage_id is not None:
            body["cloud_storage_id"] = cloud_storage_id
        resp = self._t.request("POST", f"api/tasks/{task_id}/data", json=body, idempotent=False)
        rq_id = self._rq_id(self._check(resp, f"attach files to task {task_id}", (202,), task_id), "attach files")
        if wait:
            self.wait(rq_id)
        return rq_id
