"""A small, explicit CVAT client: one method per REST operation dsgen needs, version-aware.

Every method is one step a job can record and resume from (e.g. store the task id returned by
`create_task` before calling `upload_images`). Long server work returns an `rq_id`; `wait` polls it.
"""

from __future__ import annotations

import base64
import json as jsonlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from dsgen_core.cvat.errors import (
    CvatAuthError,
    CvatError,
    CvatHttpError,
    CvatLabelMismatch,
    CvatNotFound,
    CvatRequestFailed,
    CvatTaskDeleted,
    CvatUnavailable,
    CvatUnsupportedVersion,
    CvatWrongUrl,
)
from dsgen_core.cvat.labels import coco_problems, label_problems, read_coco
from dsgen_core.cvat.models import (
    Credentials,
    LabelSpec,
    Project,
    RequestStatus,
    ServerInfo,
    Task,
    UploadFile,
    UploadReport,
)
from dsgen_core.cvat.multipart import MultipartBody
from dsgen_core.cvat.transport import RETRY_STATUSES, RetryPolicy, Transport
from dsgen_core.cvat.tus import tus_upload
from dsgen_core.cvat.upload import check_names, plan_batches
from dsgen_core.cvat.versions import Features, ServerVersion

__all__ = ["COCO", "CvatClient", "PollPolicy"]

log = logging.getLogger("dsgen.cvat")

COCO = "COCO 1.0"
SORTING_METHODS = ("lexicographical", "natural", "predefined", "random")
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class PollPolicy:
    """How `wait` polls an asynchronous request: growing intervals, an overall deadline."""

    initial: float = 0.25
    factor: float = 1.5
    maximum: float = 5.0
    timeout: float = 6 * 3600.0


DEFAULT_RETRY = RetryPolicy()
DEFAULT_POLL = PollPolicy()
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class CvatClient:
    """Talks to one CVAT server as one user. Create with `CvatClient.connect(url, credentials)`."""

    def __init__(
        self,
        url: str,
        credentials: Credentials,
        *,
        org: str | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        poll: PollPolicy = DEFAULT_POLL,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_request_bytes: int = 16 << 20,
        max_files_per_request: int = 100,
        tus_chunk_bytes: int = 8 << 20,
        verify: bool = True,
    ):
        self.credentials = credentials
        self.org = org
        self.poll = poll
        self.max_request_bytes = max_request_bytes
        self.max_files_per_request = max_files_per_request
        self.tus_chunk_bytes = min(tus_chunk_bytes, max_request_bytes)
        headers = {"X-Organization": org} if org else {}
        self._t = Transport(
            url,
            timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
            retry=retry,
            headers=headers,
            secrets=self._secrets,
            verify=verify,
        )
        self._key = ""
        self.server: ServerInfo | None = None
        self.features: Features | None = None

    def __repr__(self) -> str:
        return f"CvatClient({self._t.origin!r}, {self.credentials})"

    def _secrets(self) -> list[str]:
        return [self.credentials.secret, self._key]

    # -- connecting -----------------------------------------------------------------------------------

    @classmethod
    def connect(cls, url: str, credentials: Credentials, **kwargs: Any) -> CvatClient:
        """Detect the server version, authenticate and check the credentials with one authorized call."""
        client = cls(url, credentials, **kwargs)
        try:
            client.open()
        except BaseException:
            client.close()
            raise
        return client

    def open(self) -> None:
        about = self._about()
        if about is None:  # this server wants credentials even for /about
            self._authenticate(None)
            about = self._about()
            if about is None:
                raise CvatAuthError(f"CVAT at {self.base_url} refused the credentials (HTTP 401)")
        version = ServerVersion.parse(str(about.get("version", "")))
        self.features = Features.of(version)
        self.server = ServerInfo(self.base_url, str(about.get("name", "CVAT")), str(version))
        if not self._t.auth_headers:
            self._authenticate(self.features)
        resp = self._t.request("GET", "api/users/self")
        if resp.status_code in (401, 403):
            raise CvatAuthError(
                f"CVAT at {self.base_url} refused the credentials {self.credentials} (HTTP {resp.status_code})"
            )
        self._check(resp, "check the credentials")
        log.info("connected to CVAT %s at %s as %s", version, self.base_url, resp.json().get("username", "?"))

    def _about(self) -> dict[str, Any] | None:
        resp = self._t.request("GET", "api/server/about")
        if resp.status_code == 401:
            return None
        if resp.status_code in RETRY_STATUSES or resp.status_code >= 500:
            raise CvatUnavailable(f"CVAT at {self.base_url} is not working: /api/server/about answered "
                                  f"HTTP {resp.status_code}")
        try:
            about = resp.json() if resp.status_code == 200 else None
        except ValueError:
            about = None
        if not isinstance(about, dict) or "version" not in about:
            raise CvatWrongUrl(
                f"{self.base_url} does not look like a CVAT server: GET /api/server/about answered "
                f"HTTP {resp.status_code} without a CVAT version. Check the URL (scheme, host, port, path)."
            )
        return about

    def _authenticate(self, features: Features | None) -> None:
        c = self.credentials
        if c.kind == "basic":
            raw = base64.b64encode(f"{c.username}:{c.secret}".encode()).decode()
            self._t.auth_headers = {"Authorization": f"Basic {raw}"}
        elif c.kind == "token":
            self._key = c.secret
            self._t.auth_headers = {"Authorization": f"Token {c.secret}"}
        elif c.kind == "pat":
            if features is not None and not features.personal_access_tokens:
                raise CvatUnsupportedVersion(
                    f"personal access tokens need CVAT 2.48 or newer; this server is {features.version}. "
                    "Use a username and password instead."
                )
            self._t.auth_headers = {"Authorization": f"Bearer {c.secret}"}
        elif c.kind == "login":
            resp = self._t.request("POST", "api/auth/login", json={"username": c.username, "password": c.secret})
            if resp.status_code in (400, 401, 403):
                raise CvatAuthError(
                    f"CVAT at {self.base_url} rejected the login of user {c.username!r}: wrong username or password"
                )
            self._check(resp, "log in")
            self._key = str(resp.json().get("key", ""))
            if not self._key:
                raise CvatAuthError(f"CVAT at {self.base_url} answered the login without a token")
            self._t.auth_headers = {"Authorization": f"Token {self._key}"}
        else:
            raise ValueError(f"unknown credentials kind {c.kind!r}")

    @property
    def base_url(self) -> str:
        return str(self._t.base).rstrip("/")

    @property
    def version(self) -> ServerVersion:
        return self._features.version

    @property
    def _features(self) -> Features:
        if self.features is None:
            raise CvatError("not connected: call CvatClient.connect(...) or open() first")
        return self.features

    def close(self) -> None:
        self._t.close()

    def __enter__(self) -> CvatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- response checking ----------------------------------------------------------------------------

    def _detail(self, resp: httpx.Response) -> str:
        text = resp.text.strip()
        try:
            text = jsonlib.dumps(resp.json(), ensure_ascii=False)
        except ValueError:
            pass
        text = " ".join(text.split())[:300]
        return f": {self._t.redact(text)}" if text else ""

    def _check(self, resp: httpx.Response, what: str, ok: Sequence[int] = (200,), task_id: int | None = None
               ) -> httpx.Response:
        s = resp.status_code
        if s in ok:
            return resp
        detail = self._detail(resp)
        if s == 401:
            raise CvatAuthError(f"CVAT refused the credentials {self.credentials} while trying to {what} (HTTP 401)")
        if s == 404 and task_id is not None:
            raise CvatTaskDeleted(
                f"CVAT task {task_id} does not exist at {self.base_url} (deleted in CVAT?): could not {what}",
                task_id,
            )
        if s == 404:
            raise CvatNotFound(f"CVAT could not {what}: not found (HTTP 404){detail}", 404)
        if s == 410:
            v = self.features.version if self.features else "?"
            raise CvatHttpError(f"CVAT {v} removed the endpoint used to {what} (HTTP 410)", 410)
        if s in RETRY_STATUSES or s >= 500:
            raise CvatUnavailable(f"CVAT failed to {what}: HTTP {s}{detail}")
        raise CvatHttpError(f"CVAT refused to {what}: HTTP {s}{detail}", s)

    def _pages(self, path: str, params: dict[str, Any], what: str) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            resp = self._check(self._t.request("GET", path, params={**params, "page": page, "page_size": 100}), what)
            body = resp.json()
            yield from body.get("results", [])
            if not body.get("next"):
                return
            page += 1

    def _rq_id(self, resp: httpx.Response, what: str) -> str:
        try:
            return str(resp.json()["rq_id"])
        except (ValueError, KeyError, TypeError):
            raise CvatHttpError(f"CVAT accepted the request to {what} but returned no rq_id", resp.status_code
                                ) from None

    # -- projects and labels --------------------------------------------------------------------------

    def _project(self, d: dict[str, Any]) -> Project:
        return Project(int(d["id"]), str(d["name"]), f"{self.base_url}/projects/{d['id']}")

    def list_projects(self, name: str | None = None) -> list[Project]:
        params = {"name": name} if name else {}
        return [self._project(d) for d in self._pages("api/projects", params, "list projects")
                if name is None or d.get("name") == name]

    def get_project(self, project_id: int) -> Project:
        return self._project(self._check(self._t.request("GET", f"api/projects/{project_id}"),
                                         f"get project {project_id}").json())

    def create_project(self, name: str, labels: Sequence[LabelSpec]) -> Project:
        """Not retried after an unknown outcome; look it up with `list_projects(name)` before re-creating."""
        body = {"name": name, "labels": [lab.to_api() for lab in labels]}
        resp = self._t.request("POST", "api/projects", json=body, idempotent=False)
        return self._project(self._check(resp, f"create project {name!r}", ok=(201,)).json())

    def project_labels(self, project_id: int) -> list[LabelSpec]:
        return [LabelSpec.from_api(d) for d in self._pages("api/labels", {"project_id": project_id},
                                                            f"get the labels of project {project_id}")]

    def task_labels(self, task_id: int) -> list[LabelSpec]:
        self.get_task(task_id)  # a deleted task → CvatTaskDeleted rather than an empty label list
        return [LabelSpec.from_api(d) for d in self._pages("api/labels", {"task_id": task_id},
                                                            f"get the labels of task {task_id}")]

    def ensure_project(self, name: str, labels: Sequence[LabelSpec]) -> Project:
        """The project called `name`, created with `labels` if absent; CvatLabelMismatch if its labels differ."""
        found = self.list_projects(name)
        if not found:
            return self.create_project(name, labels)
        project = found[0]
        problems = label_problems(self.project_labels(project.id), labels)
        if problems:
            raise CvatLabelMismatch(
                f"CVAT project {name!r} (id {project.id}) has labels that do not match ours: " + "; ".join(problems),
                problems,
            )
        return project

    # -- tasks ----------------------------------------------------------------------------------------

    def _task(self, d: dict[str, Any]) -> Task:
        return Task(
            id=int(d["id"]),
            name=str(d.get("name", "")),
            project_id=d.get("project_id"),
            size=int(d.get("size") or 0),
            segment_size=int(d.get("segment_size") or 0),
            status=str(d.get("status", "")),
            url=f"{self.base_url}/tasks/{d['id']}",
            raw=d,
        )

    def create_task(
        self,
        name: str,
        *,
        project_id: int | None = None,
        labels: Sequence[LabelSpec] | None = None,
        segment_size: int,
        overlap: int | None = None,
    ) -> Task:
        """An empty task; jobs cannot be re-split later, so `segment_size` is required. Not retried blindly."""
        if (project_id is None) == (labels is None):
            raise ValueError("give exactly one of project_id or labels")
        if segment_size < 1:
            raise ValueError("segment_size must be >= 1")
        body: dict[str, Any] = {"name": name, "segment_size": segment_size}
        if project_id is not None:
            body["project_id"] = project_id
        else:
            body["labels"] = [lab.to_api() for lab in labels or ()]
        if overlap is not None:
            body["overlap"] = overlap
        resp = self._t.request("POST", "api/tasks", json=body, idempotent=False)
        return self._task(self._check(resp, f"create task {name!r}", ok=(201,)).json())

    def get_task(self, task_id: int) -> Task:
        """The task; CvatTaskDeleted if it no longer exists."""
        resp = self._t.request("GET", f"api/tasks/{task_id}")
        return self._task(self._check(resp, f"get task {task_id}", task_id=task_id).json())

    def list_tasks(self, project_id: int | None = None, name: str | None = None) -> list[Task]:
        params: dict[str, Any] = {}
        if project_id is not None:
            params["project_id"] = project_id
        if name:
            params["name"] = name
        return [self._task(d) for d in self._pages("api/tasks", params, "list tasks")
                if name is None or d.get("name") == name]

    def delete_task(self, task_id: int, missing_ok: bool = True) -> bool:
        """Delete a task; False if it was already gone (and `missing_ok`)."""
        resp = self._t.request("DELETE", f"api/tasks/{task_id}")
        if resp.status_code == 404 and missing_ok:
            return False
        self._check(resp, f"delete task {task_id}", ok=(204, 200), task_id=task_id)
        return True

    def task_status(self, task_id: int) -> dict[str, Any]:
        """The legacy `GET /api/tasks/{id}/status` (state of the data upload: Queued/Started/Finished/Failed)."""
        resp = self._t.request("GET", f"api/tasks/{task_id}/status")
        return self._check(resp, f"get the status of task {task_id}", task_id=task_id).json()

    # -- asynchronous requests ------------------------------------------------------------------------

    def request_status(self, rq_id: str) -> RequestStatus:
        resp = self._t.request("GET", f"api/requests/{quote(rq_id, safe='')}")
        d = self._check(resp, f"get the status of request {rq_id!r}").json()
        return RequestStatus(rq_id, str(d.get("status", "")).lower(), str(d.get("message") or ""),
                             d.get("progress"), d.get("result_url"))

    def wait(self, rq_id: str, on_status: Callable[[RequestStatus], None] | None = None,
             timeout: float | None = None) -> RequestStatus:
        """Poll until finished (returned) or failed (CvatRequestFailed); growing intervals, no open request."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.poll.timeout)
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
            interval = min(self.poll.maximum, interval * self.poll.factor)

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
        multi-request protocol: Upload-Start, bounded batches (files bigger than the bound by TUS),
        Upload-Finish with `upload_file_order`. With `wait`, returns after the server built the task.
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

        single = MultipartBody(fields, [(f"client_files[{i}]", f) for i, f in enumerate(files)])
        if single.size <= self.max_request_bytes and len(files) <= self.max_files_per_request:
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
        batches, too_big = plan_batches(files, self.max_request_bytes, self.max_files_per_request)
        for batch in batches:
            body = MultipartBody([], [(f"client_files[{k}]", f) for k, (_, f) in enumerate(batch.files)])
            resp = self._t.request("POST", endpoint, body=body, headers={"Upload-Multiple": "true"})
            self._check(resp, what, (200, 202), task_id)
            report.request_sizes.append(body.size)
            progress(sum(f.size for _, f in batch.files))
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
    ) -> str:
        """Import COCO 1.0 (a .json or export .zip) into a task; CVAT replaces the task's annotations.

        method: "auto" (one request if within `max_request_bytes`, else TUS), "tus", or "multipart"
        (PUT before CVAT 2.38, POST from 2.38). Returns the rq_id (already finished when `wait`).
        """
        data = Path(coco).read_bytes() if isinstance(coco, (str, Path)) else bytes(coco)
        if check_labels:
            self.check_coco_for_task(task_id, data)
        f = UploadFile(filename, data=data)
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
            self.wait(rq_id)
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
