"""A fake CVAT server over real HTTP, behaving as docs/cvat.md ("The fake CVAT") describes, version-switchable.

    with FakeCvat(version="2.23.1") as cvat:          # listens on a free loopback port
        cvat.url, cvat.username, cvat.password
        cvat.fail(path="/api/tasks$", status=503, times=2)   # failure injection
        cvat.tasks(), cvat.annotations(task_id), cvat.move_shape(...)   # inspect / edit state
"""

from __future__ import annotations

import base64
import copy
import json
import os
import random
import re
import secrets
import shutil
import socket
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from PIL import Image

from .coco import ImportFailed, export_coco, export_zip, import_coco, read_document
from .model import ApiError, Frame, Label, Project, Request, Shape, State, Task
from .wire import MultipartError, body_chunks, parse_multipart

COCO = "COCO 1.0"
EXPORT_FORMATS = (COCO,)
EXIF_ORIENTATION = 0x0112
MEDIA_TYPE = "application/vnd.cvat+json"  # CVAT's only JSON renderer
API_VERSIONS = ("2.0",)  # what `Accept: …; version=` may ask for
SORTING = ("lexicographical", "natural", "predefined", "random")


def _version(text: str) -> tuple[int, int, int]:
    parts = [int(p) for p in re.findall(r"\d+", text)[:3]]
    return tuple(parts + [0] * (3 - len(parts)))  # type: ignore[return-value]


@dataclass
class Fault:
    """Failure injection: for requests matching `method`/`path` (regex on the path), `times` times
    (-1 = always): wait `delay` seconds, then answer `status`, or `drop` the connection without an
    answer (before processing, or `after` processing so the answer is lost)."""

    method: str | None = None
    path: str = ""
    status: int | None = None
    drop: bool = False
    after: bool = False
    delay: float = 0.0
    times: int = 1
    retry_after: float | None = None
    body: Any = None  # the JSON answer with `status` (default {"detail": "injected failure"})
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (self.times < 0 or self.hits < self.times) and (self.method in (None, method)) and bool(
            re.search(self.path, path))


@dataclass
class Recorded:
    """One request as the fake saw it (no Authorization or Cookie values)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body_bytes: int = 0
    status: int = 0
    files: int = 0  # multipart file parts
    started: float = field(default_factory=time.monotonic)  # when the request line arrived
    ended: float = 0.0  # when the answer was sent (0 while running): tests see what overlapped


_HIDDEN_HEADERS = {"authorization", "cookie"}


class FakeCvat:
    """The fake server: start()/stop() (or `with`), knobs as attributes, state inspection and edit helpers."""

    def __init__(
        self,
        version: str = "2.23.1",
        *,
        root: Path | None = None,
        username: str = "dsgen-bot",
        password: str = "s3cret-Passw0rd!",
        share_root: Path | None = None,
        cloud_storages: dict[int, Path] | None = None,
        max_body_bytes: int | None = None,
        max_files_per_request: int | None = None,
        request_delay: float = 0.0,
    ):
        self.version = version
        self.v = _version(version)
        self._own_root = root is None
        self.root = Path(root or tempfile.mkdtemp(prefix="fake-cvat-"))
        self.state = State(self.root)
        self.username, self.password = username, password
        self.state.users[username] = password
        self.share_root = share_root
        self.cloud_storages = dict(cloud_storages or {})
        self.max_body_bytes = max_body_bytes  # like a proxy's limit: 413 above it
        self.max_files_per_request = max_files_per_request  # like Django's DATA_UPLOAD_MAX_NUMBER_FILES
        self.request_delay = request_delay  # seconds each asynchronous request waits before starting
        self.faults: list[Fault] = []
        self.log: list[Recorded] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> FakeCvat:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-cvat", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> FakeCvat:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "not started"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def at_least(self, major: int, minor: int) -> bool:
        return self.v >= (major, minor, 0)

    # -- knobs ---------------------------------------------------------------------------------------

    def fail(self, **kwargs: Any) -> Fault:
        """Add a Fault (see its fields); returns it so a test can read `hits`."""
        fault = Fault(**kwargs)
        with self.state.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.state.lock:
            self.faults.clear()

    def add_access_token(self, username: str | None = None) -> str:
        """A personal access token (accepted as `Authorization: Bearer` from CVAT 2.48)."""
        pat = "pat_" + secrets.token_hex(20)
        self.state.access_tokens[pat] = username or self.username
        return pat

    def login_token(self, username: str | None = None) -> str:
        key = secrets.token_hex(20)
        self.state.tokens[key] = username or self.username
        return key

    # -- inspection ----------------------------------------------------------------------------------

    def requests(self, method: str | None = None, path: str = "") -> list[Recorded]:
        with self.state.lock:
            return [r for r in self.log if method in (None, r.method) and re.search(path, r.path)]

    def tasks(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [{"id": t.id, "name": t.name, "project_id": t.project_id, "size": t.size,
                     "segment_size": t.segment_size, "image_quality": t.image_quality,
                     "frames": [f.name for f in t.frames], "shapes": len(t.shapes)}
                    for t in self.state.tasks.values()]

    def task(self, task_id: int) -> Task:
        """A deep copy of the task (frames, shapes, labels via `labels(task_id)`)."""
        return self.state.snapshot(task_id)

    def labels(self, task_id: int) -> list[Label]:
        with self.state.lock:
            return copy.deepcopy(self.state.task_labels(self.state.tasks[task_id]))

    def uploaded_files(self, task_id: int) -> dict[str, bytes]:
        """Frame name → bytes, in frame order."""
        with self.state.lock:
            frames = list(self.state.tasks[task_id].frames)
        return {f.name: f.path.read_bytes() for f in frames}

    def annotations(self, task_id: int) -> dict[str, Any]:
        """The task's annotations as CVAT's COCO export would show them now."""
        with self.state.lock:
            t = self.state.tasks[task_id]
            return export_coco(t.frames, t.shapes, self.state.task_labels(t))

    def shapes(self, task_id: int) -> list[Shape]:
        with self.state.lock:
            return copy.deepcopy(self.state.tasks[task_id].shapes)

    # -- server-side edits (what annotators do in CVAT) -------------------------------------------------

    def _shape(self, task_id: int, shape_id: int) -> Shape:
        return next(s for s in self.state.tasks[task_id].shapes if s.id == shape_id)

    def move_shape(self, task_id: int, shape_id: int, dx: float, dy: float) -> None:
        with self.state.lock:
            s = self._shape(task_id, shape_id)
            s.points = [v + (dx if i % 2 == 0 else dy) for i, v in enumerate(s.points)]
            s.polygons = [[v + (dx if i % 2 == 0 else dy) for i, v in enumerate(p)] for p in s.polygons]
            s.source = "manual"

    def add_box(self, task_id: int, frame_name: str, label: str, bbox: tuple[float, float, float, float], *,
                occluded: bool = False, attributes: dict[str, str] | None = None) -> int:
        with self.state.lock:
            t = self.state.tasks[task_id]
            lab = next(lab for lab in self.state.task_labels(t) if lab.name == label)
            frame = next(i for i, f in enumerate(t.frames) if f.name == frame_name)
            values = {a.id: (attributes or {}).get(a.name, a.default_value) for a in lab.attributes}
            x, y, w, h = bbox
            shape = Shape(self.state.next_id("shape"), frame, lab.id, "rectangle", [x, y, x + w, y + h],
                          occluded=occluded, attributes=values, source="manual")
            t.shapes.append(shape)
            return shape.id

    def delete_shape(self, task_id: int, shape_id: int) -> None:
        with self.state.lock:
            t = self.state.tasks[task_id]
            t.shapes = [s for s in t.shapes if s.id != shape_id]

    def set_attribute(self, task_id: int, shape_id: int, name: str, value: Any) -> None:
        """Set `occluded`, `rotation` or a declared attribute (stored as CVAT stores it: a string)."""
        with self.state.lock:
            t = self.state.tasks[task_id]
            s = self._shape(task_id, shape_id)
            if name == "occluded":
                s.occluded = bool(value)
            elif name == "rotation":
                s.rotation = float(value)
            else:
                lab = next(lab for lab in self.state.task_labels(t) if lab.id == s.label_id)
                attr = lab.attribute(name)
                if attr is None:
                    raise KeyError(f"label {lab.name!r} has no attribute {name!r}")
                s.attributes[attr.id] = attr.from_coco(value)
            s.source = "manual"

    def set_label(self, task_id: int, shape_id: int, label: str) -> None:
        with self.state.lock:
            t = self.state.tasks[task_id]
            s = self._shape(task_id, shape_id)
            s.label_id = next(lab.id for lab in self.state.task_labels(t) if lab.name == label)

    def rename_label(self, task_id: int, old: str, new: str) -> None:
        """Rename a class (in the task's project when it has one)."""
        with self.state.lock:
            lab = next(lab for lab in self.state.task_labels(self.state.tasks[task_id]) if lab.name == old)
            lab.name = new

    def delete_task(self, task_id: int) -> None:
        """Delete a task server-side, as a CVAT user would."""
        with self.state.lock:
            self.state.tasks.pop(task_id, None)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001 - quiet on dropped connections
        pass


def _natural_key(name: str) -> list[Any]:
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", name)]


class _Drop(Exception):
    """Close the connection without answering."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 1 << 16  # headers and body leave in one write (unbuffered writes hit Nagle + delayed ACK: 40 ms)
    disable_nagle_algorithm = True
    fake: FakeCvat
    server_version = "fake-cvat"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    # -- plumbing ------------------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    def do_HEAD(self) -> None:  # noqa: N802
        self._handle("HEAD")

    def _chunks(self):
        self._consumed = True
        for block in body_chunks(self.rfile, self.headers):
            self._rec.body_bytes += len(block)
            yield block

    def _drain(self) -> None:
        if not self._consumed:
            for _ in self._chunks():
                pass

    def _body(self) -> bytes:
        return b"".join(self._chunks())

    def _json_body(self) -> Any:
        raw = self._body()
        try:
            return json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise ApiError(400, {"detail": "JSON parse error"}) from None

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None,
              raw: bytes | None = None, content_type: str = MEDIA_TYPE) -> None:
        self._drain()
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        self.send_response(status)
        if data or raw is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self._rec.status = status

    def _handle(self, method: str) -> None:
        fake = self.fake
        split = urlsplit(self.path)
        self._path, self._query = split.path, parse_qs(split.query, keep_blank_values=True)
        self._consumed = False
        self._rec = Recorded(method, self._path, self._query,
                             {k: v for k, v in self.headers.items() if k.lower() not in _HIDDEN_HEADERS})
        with fake.state.lock:
            fake.log.append(self._rec)
            fault = next((f for f in fake.faults if f.matches(method, self._path)), None)
            if fault is not None:
                fault.hits += 1
        try:
            if fault is not None:
                if fault.delay:
                    time.sleep(fault.delay)
                if fault.drop and not fault.after:
                    self._drain()
                    raise _Drop
                if fault.status is not None:
                    hdrs = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                    body = fault.body if fault.body is not None else {"detail": "injected failure"}
                    self._send(fault.status, body, hdrs)
                    return
            if fake.max_body_bytes is not None and int(self.headers.get("Content-Length") or 0) > fake.max_body_bytes:
                self._send(413, raw=b"<html><body>413 Request Entity Too Large</body></html>",
                           content_type="text/html")
                return
            if fault is not None and fault.drop and fault.after:
                try:
                    self._dispatch(method)
                except ApiError:
                    pass
                self._drain()
                raise _Drop
            self._dispatch(method)
        except _Drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        except ApiError as exc:
            self._send(exc.status, exc.body)
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True
        finally:
            self._rec.ended = time.monotonic()

    # -- auth ----------------------------------------------------------------------------------------

    def _user(self, method: str) -> str:
        st = self.fake.state
        cookie = self.headers.get("Cookie") or ""
        session = re.search(r"sessionid=([^;\s]+)", cookie)
        if session and session.group(1) in st.sessions and method in ("POST", "PUT", "PATCH", "DELETE"):
            if not self.headers.get("X-CSRFToken"):
                raise ApiError(403, {"detail": "CSRF Failed: CSRF token missing."})
        auth = self.headers.get("Authorization") or ""
        scheme, _, value = auth.partition(" ")
        scheme = scheme.lower()
        if scheme == "token":
            if value in st.tokens:
                return st.tokens[value]
            raise ApiError(401, {"detail": "Invalid token."})
        if scheme == "bearer":
            if self.fake.at_least(2, 48) and value in st.access_tokens:
                return st.access_tokens[value]
            raise ApiError(401, {"detail": "Invalid token."})
        if scheme == "basic":
            try:
                user, _, pw = base64.b64decode(value).decode().partition(":")
            except ValueError:
                raise ApiError(401, {"detail": "Invalid basic header."}) from None
            if st.users.get(user) == pw:
                return user
            raise ApiError(401, {"detail": "Invalid username/password."})
        if session and session.group(1) in st.sessions:
            return st.sessions[session.group(1)]
        raise ApiError(401, {"detail": "Authentication credentials were not provided."})

    def _org(self) -> str | None:
        return self.headers.get("X-Organization") or (self._query.get("org") or [None])[0]

    # -- routing -------------------------------------------------------------------------------------

    _ROUTES: list[tuple[re.Pattern, str]] = [
        (re.compile(p), name)
        for p, name in [
            (r"^/api/server/about/?$", "about"),
            (r"^/api/auth/login/?$", "login"),
            (r"^/api/users/self/?$", "users_self"),
            (r"^/api/projects/?$", "projects"),
            (r"^/api/projects/(\d+)/?$", "project"),
            (r"^/api/labels/?$", "labels"),
            (r"^/api/labels/(\d+)/?$", "label"),
            (r"^/api/tasks/?$", "tasks"),
            (r"^/api/tasks/(\d+)/?$", "task"),
            (r"^/api/tasks/(\d+)/status/?$", "task_status"),
            (r"^/api/tasks/(\d+)/data/?$", "task_data"),
            (r"^/api/tasks/(\d+)/data/meta/?$", "data_meta"),
            (r"^/api/tasks/(\d+)/(data|annotations)/([0-9a-f]{32})$", "tus_file"),
            (r"^/api/tasks/(\d+)/annotations/?$", "annotations"),
            (r"^/api/tasks/(\d+)/dataset/export/?$", "export"),
            (r"^/api/tasks/(\d+)/dataset/download/?$", "download"),
            (r"^/api/requests/([^/]+)/?$", "request_status"),
        ]
    ]

    def _negotiate(self) -> None:
        """DRF's content negotiation, before authentication: 406 unless the Accept header admits CVAT's renderer."""
        accept = self.headers.get("Accept")
        if accept is None or not accept.strip():
            return
        for item in accept.split(","):
            media, *params = (p.strip() for p in item.split(";"))
            if media.lower() in ("*/*", "application/*", MEDIA_TYPE):
                version = next((v.strip('"') for k, _, v in (p.partition("=") for p in params)
                                if k.strip().lower() == "version"), None)
                if media.lower() == MEDIA_TYPE and version is not None and version not in API_VERSIONS:
                    raise ApiError(406, {"detail": 'Invalid version in "Accept" header.'})
                return
        raise ApiError(406, {"detail": "Could not satisfy the request Accept header."})

    def _dispatch(self, method: str) -> None:
        for pattern, name in self._ROUTES:
            m = pattern.match(self._path)
            if m:
                self._negotiate()
                if name not in ("about", "login"):
                    self._who = self._user(method)
                getattr(self, "r_" + name)(method, *m.groups())
                return
        raise ApiError(404, {"detail": "Not found."})

    def _q(self, name: str, default: str | None = None) -> str | None:
        return (self._query.get(name) or [default])[0]

    @staticmethod
    def _not_allowed(method: str) -> ApiError:
        return ApiError(405, {"detail": f'Method "{method}" not allowed.'})

    def _origin(self) -> str:
        return f"http://{self.headers.get('Host') or '127.0.0.1'}"

    def _task(self, task_id: str) -> Task:
        task = self.fake.state.tasks.get(int(task_id))
        if task is None:
            raise ApiError(404, {"detail": "No Task matches the given query."})
        return task

    def _page(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        page = int(self._q("page", "1") or 1)
        size = min(int(self._q("page_size", "10") or 10), 1000)
        chunk = items[(page - 1) * size : page * size]
        base = f"{self._origin()}{self._path}"
        nxt = f"{base}?page={page + 1}&page_size={size}" if page * size < len(items) else None
        prev = f"{base}?page={page - 1}&page_size={size}" if page > 1 else None
        return {"count": len(items), "next": nxt, "previous": prev, "results": chunk}

    # -- server, auth ------------------------------------------------------------------------------------

    def r_about(self, method: str) -> None:
        if method != "GET":
            raise self._not_allowed(method)
        self._send(200, {"name": "Computer Vision Annotation Tool", "description": "fake CVAT for dsgen tests",
                         "version": self.fake.version})

    def r_login(self, method: str) -> None:
        if method != "POST":
            raise self._not_allowed(method)
        body = self._json_body()
        st = self.fake.state
        user, pw = str(body.get("username", "")), str(body.get("password", ""))
        if not user or st.users.get(user) != pw:
            raise ApiError(400, {"non_field_errors": ["Unable to log in with provided credentials."]})
        key = secrets.token_hex(20)
        session = secrets.token_hex(16)
        with st.lock:
            st.tokens[key] = user
            st.sessions[session] = user
        cookies = f"sessionid={session}; HttpOnly; Path=/; SameSite=Lax"
        self._send(200, {"key": key}, {"Set-Cookie": cookies})
        # a second Set-Cookie (csrftoken) would go here in CVAT; one cookie is enough to trip the CSRF rule

    def r_users_self(self, method: str) -> None:
        self._send(200, {"id": 1, "username": self._who, "is_active": True, "groups": ["user"]})

    # -- projects and labels ---------------------------------------------------------------------------

    def _project_json(self, p: Project) -> dict[str, Any]:
        return {"id": p.id, "name": p.name, "owner": {"username": p.owner}, "organization": p.org,
                "labels": {"url": f"{self._origin()}/api/labels?project_id={p.id}", "count": len(p.labels)},
                "url": f"{self._origin()}/api/projects/{p.id}", "status": "annotation"}

    def r_projects(self, method: str) -> None:
        st = self.fake.state
        if method == "GET":
            name = (self._q("name") or "").lower()
            with st.lock:
                items = [self._project_json(p) for p in st.projects.values()
                         if p.org == self._org() and name in p.name.lower()]
            self._send(200, self._page(items))
        elif method == "POST":
            body = self._json_body()
            name = str(body.get("name") or "").strip()
            if not name:
                raise ApiError(400, {"name": ["This field is required."]})
            with st.lock:
                pid = st.next_id("project")
                labels = st.make_labels(body.get("labels") or [], project_id=pid)
                p = Project(pid, name, self._who, self._org(), labels)
                st.projects[pid] = p
                self._send(201, self._project_json(p))
        else:
            raise self._not_allowed(method)

    def r_project(self, method: str, pid: str) -> None:
        st = self.fake.state
        with st.lock:
            p = st.projects.get(int(pid))
            if p is None:
                raise ApiError(404, {"detail": "No Project matches the given query."})
            if method == "GET":
                self._send(200, self._project_json(p))
            elif method == "DELETE":
                del st.projects[p.id]
                for tid in [t.id for t in st.tasks.values() if t.project_id == p.id]:
                    del st.tasks[tid]
                self._send(204)
            else:
                raise self._not_allowed(method)

    def r_labels(self, method: str) -> None:
        if method != "GET":
            raise self._not_allowed(method)
        st = self.fake.state
        with st.lock:
            if self._q("project_id"):
                p = st.projects.get(int(self._q("project_id") or 0))
                labels = p.labels if p else []
            elif self._q("task_id"):
                t = st.tasks.get(int(self._q("task_id") or 0))
                labels = st.task_labels(t) if t else []
            else:
                labels = [lab for p in st.projects.values() for lab in p.labels]
            self._send(200, self._page([lab.api() for lab in labels]))

    def r_label(self, method: str, lid: str) -> None:
        """`GET` one label; `PATCH {"name": ...}` renames it (the shapes keep it, so they come back renamed)."""
        st = self.fake.state
        with st.lock:
            lab = next((lab for lab in st.all_labels() if lab.id == int(lid)), None)
        if lab is None:
            raise ApiError(404, {"detail": "No Label matches the given query."})
        if method == "PATCH":
            name = str(self._json_body().get("name") or "").strip()
            if not name:
                raise ApiError(400, {"name": ["This field may not be blank."]})
            with st.lock:
                siblings = st.sibling_labels(lab)
                if any(other.name == name and other.id != lab.id for other in siblings):
                    raise ApiError(400, {"name": [f"Label '{name}' already exists"]})
                lab.name = name
        elif method != "GET":
            raise self._not_allowed(method)
        self._send(200, lab.api())

    # -- tasks ------------------------------------------------------------------------------------------

    def _task_json(self, t: Task) -> dict[str, Any]:
        labels = self.fake.state.task_labels(t)
        jobs = -(-t.size // t.segment_size) if t.size and t.segment_size else (1 if t.size else 0)
        return {"id": t.id, "name": t.name, "project_id": t.project_id, "mode": "annotation" if t.frames else "",
                "owner": {"username": t.owner}, "organization": t.org, "status": "annotation", "size": t.size,
                "segment_size": t.segment_size or t.size, "overlap": t.overlap, "image_quality": t.image_quality,
                "labels": {"url": f"{self._origin()}/api/labels?task_id={t.id}", "count": len(labels)},
                "jobs": {"count": jobs, "url": f"{self._origin()}/api/jobs?task_id={t.id}"},
                "url": f"{self._origin()}/api/tasks/{t.id}"}

    def r_tasks(self, method: str) -> None:
        st = self.fake.state
        if method == "GET":
            name = (self._q("name") or "").lower()
            pid = self._q("project_id")
            with st.lock:
                items = [self._task_json(t) for t in st.tasks.values() if t.org == self._org()
                         and name in t.name.lower() and (pid is None or str(t.project_id) == pid)]
            self._send(200, self._page(items))
            return
        if method != "POST":
            raise self._not_allowed(method)
        body = self._json_body()
        name = str(body.get("name") or "").strip()
        if not name:
            raise ApiError(400, {"name": ["This field is required."]})
        project_id, labels = body.get("project_id"), body.get("labels")
        if project_id is None and not labels:
            raise ApiError(400, {"label_set": ["Label set or project_id must be present"]})
        if project_id is not None and labels:
            raise ApiError(400, {"project_id": ["Task with a project cannot have its own labels"]})
        try:
            segment_size = int(body.get("segment_size") or 0)
            overlap = int(body.get("overlap") or 0)
        except (TypeError, ValueError):
            raise ApiError(400, {"segment_size": ["A valid integer is required."]}) from None
        with st.lock:
            if project_id is not None and int(project_id) not in st.projects:
                raise ApiError(400, {"project_id": [f"Invalid pk \"{project_id}\" - object does not exist."]})
            tid = st.next_id("task")
            own = st.make_labels(labels, task_id=tid) if labels else []
            t = Task(tid, name, self._who, self._org(), int(project_id) if project_id is not None else None,
                     segment_size, overlap, own)
            st.tasks[tid] = t
            self._send(201, self._task_json(t))

    def r_task(self, method: str, tid: str) -> None:
        st = self.fake.state
        with st.lock:
            t = self._task(tid)
            if method == "GET":
                self._send(200, self._task_json(t))
            elif method == "DELETE":
                del st.tasks[t.id]
                self._send(204)
            else:
                raise self._not_allowed(method)

    def r_task_status(self, method: str, tid: str) -> None:
        with self.fake.state.lock:
            t = self._task(tid)
            self._send(200, {"state": t.data_state or "Unknown", "message": t.data_message})

    # -- asynchronous requests ---------------------------------------------------------------------------

    def _rq_id(self, action: str, t: Task, subresource: str = "", fmt: str = "") -> str:
        if self.fake.at_least(2, 70):
            rq = f"action={action}&target=task&target_id={t.id}"
            if subresource:
                rq += f"&subresource={subresource}"
            if fmt:
                rq += f"&format={fmt}&user_id=1"
            return rq
        if action == "create":
            return f"create:task.id{t.id}"
        if action == "import":
            return f"import:task.id{t.id}.{subresource}"
        return f"export:task.id{t.id}.{subresource}-in-{fmt.replace(' ', '_')}-format-by-1"

    def _start(self, rq: Request, work) -> None:  # noqa: ANN001
        st = self.fake.state
        old = st.requests.get(rq.id)
        if old is not None and old.status in ("queued", "started"):
            raise ApiError(409, {"detail": f"Request {rq.id} is already in progress"})
        st.run_request(rq, work, self.fake.request_delay)

    def r_request_status(self, method: str, rq_id: str) -> None:
        if method != "GET":
            raise self._not_allowed(method)
        st = self.fake.state
        with st.lock:
            rq = st.requests.get(unquote(rq_id))
            if rq is None:
                raise ApiError(404, {"detail": "Not found."})
            status = rq.visible_status()
            self._send(200, {
                "id": rq.id, "status": status, "message": rq.message if status == "failed" else "",
                "progress": rq.progress if status != "queued" else 0.0,
                "result_url": rq.result_url if status == "finished" else None,
                "operation": {"type": f"{rq.action}:task", "target": "task", "task_id": rq.task_id,
                              "format": rq.format or None},
            })

    # -- image data -------------------------------------------------------------------------------------

    def _save_client_files(self, t: Task, check_fields: bool = False) -> dict[str, list[str]]:
        """Parse a multipart body; `client_files[i]` parts are stored under their base name (as Django does).

        Files are committed only once the whole request parsed and (`check_fields`: an Upload-Multiple batch,
        which CVAT checks with the same data serializer) its fields passed: a refused request leaves nothing.
        """
        assert t.upload_dir is not None
        staged: list[tuple[str, Path]] = []

        def open_file(field_name: str, filename: str):  # noqa: ANN202
            if not re.fullmatch(r"client_files\[\d+\]", field_name):
                raise ApiError(400, {"detail": f"Unexpected file field {field_name!r}; use client_files[i]"})
            if self.fake.max_files_per_request and len(staged) >= self.fake.max_files_per_request:
                raise ApiError(400, {"detail": "The number of files exceeded settings.DATA_UPLOAD_MAX_NUMBER_FILES."})
            tmp = t.upload_dir / f".part-{uuid.uuid4().hex}"  # type: ignore[operator]
            staged.append((filename.replace("\\", "/").rsplit("/", 1)[-1], tmp))
            return open(tmp, "wb")  # noqa: SIM115 - closed by the parser

        ctype = self.headers.get("Content-Type") or ""
        if not ctype.startswith("multipart/form-data"):
            raise ApiError(400, {"detail": "Expected multipart/form-data"})
        try:
            fields = parse_multipart(self._chunks(), ctype, open_file)
        except MultipartError as exc:
            raise ApiError(400, {"detail": f"Malformed multipart body: {exc}"}) from None
        except BaseException:
            for _, tmp in staged:
                tmp.unlink(missing_ok=True)
            raise
        finally:
            self._rec.files = len(staged)
        if check_fields:
            try:
                self._quality(self._flatten(fields))
            except ApiError:
                for _, tmp in staged:
                    tmp.unlink(missing_ok=True)
                raise
        try:  # outside the lock: a Django worker holds no server-wide lock while it writes files
            for name, tmp in staged:
                os.replace(tmp, t.upload_dir / name)
        except FileNotFoundError:  # an Upload-Start of a retry reset the upload meanwhile
            raise ApiError(409, {"detail": "The upload was restarted"}) from None
        with self.fake.state.lock:
            t.upload_order.update(dict.fromkeys(name for name, _ in staged))
        return fields

    def _fresh_upload(self, t: Task) -> None:
        if t.frames or t.data_state in ("Queued", "Started"):
            raise ApiError(400, {"detail": "Adding more data is not supported"})
        t.upload_dir = self.fake.root / "tasks" / str(t.id) / "upload"
        shutil.rmtree(t.upload_dir, ignore_errors=True)
        t.upload_dir.mkdir(parents=True)
        t.upload_order = {}
        t.tus = {}

    def r_task_data(self, method: str, tid: str) -> None:
        if method != "POST":
            raise self._not_allowed(method)
        st = self.fake.state
        with st.lock:
            t = self._task(tid)
        h = self.headers
        if h.get("Upload-Start"):
            with st.lock:
                self._fresh_upload(t)
                t.upload_open = True
            self._send(202)
        elif h.get("Upload-Multiple"):
            if not t.upload_open:
                raise ApiError(400, {"detail": "Upload-Multiple without Upload-Start"})
            self._save_client_files(t, check_fields=True)
            self._send(200)
        elif h.get("Tus-Resumable") and h.get("Upload-Length"):
            if not t.upload_open:
                raise ApiError(400, {"detail": "TUS upload without Upload-Start"})
            self._tus_create(t, "data")
        elif h.get("Upload-Finish"):
            if not t.upload_open:
                raise ApiError(400, {"detail": "Upload-Finish without Upload-Start"})
            fields = self._data_fields()
            with st.lock:
                self._create_data(t, fields)  # a refused finish keeps the upload open for a corrected one
                t.upload_open = False
        else:
            with st.lock:
                self._fresh_upload(t)
            if (h.get("Content-Type") or "").startswith("application/json"):
                fields = self._json_body()
            else:
                fields = self._flatten(self._save_client_files(t))
            with st.lock:
                self._create_data(t, fields)

    @staticmethod
    def _flatten(form: dict[str, list[str]]) -> dict[str, Any]:
        """Form fields as the DRF serializer sees them: `a[0]`, `a[1]` / repeated `a` → lists."""
        out: dict[str, Any] = {}
        lists: dict[str, list[tuple[int, str]]] = {}
        for key, values in form.items():
            m = re.fullmatch(r"(.+)\[(\d+)\]", key)
            if m:
                lists.setdefault(m.group(1), []).extend((int(m.group(2)), v) for v in values)
            elif key in ("upload_file_order", "server_files"):
                out[key] = list(values)
            else:
                out[key] = values[-1]
        for key, items in lists.items():
            out[key] = [v for _, v in sorted(items)]
        return out

    def _data_fields(self) -> dict[str, Any]:
        if (self.headers.get("Content-Type") or "").startswith("multipart/form-data"):
            try:
                form = parse_multipart(self._chunks(), self.headers["Content-Type"], lambda *a: None)  # type: ignore
            except (MultipartError, AttributeError) as exc:
                raise ApiError(400, {"detail": f"Malformed body: {exc}"}) from None
            return self._flatten(form)
        return self._json_body()

    @staticmethod
    def _quality(fields: dict[str, Any]) -> int:
        """The data serializer's check of `image_quality` (required, 1-100) that every data request passes."""
        quality = fields.get("image_quality")
        if quality in (None, ""):
            raise ApiError(400, {"image_quality": ["This field is required."]})
        try:
            quality = int(quality)
        except (TypeError, ValueError):
            raise ApiError(400, {"image_quality": ["A valid integer is required."]}) from None
        if not 1 <= quality <= 100:
            raise ApiError(400, {"image_quality": ["Ensure this value is between 1 and 100."]})
        return quality

    def _create_data(self, t: Task, fields: dict[str, Any]) -> None:
        """Validate the data fields (image_quality is required) and start the create request."""
        quality = self._quality(fields)
        sorting = fields.get("sorting_method") or "lexicographical"
        if sorting not in SORTING:
            raise ApiError(400, {"sorting_method": [f'"{sorting}" is not a valid choice.']})
        server_files = fields.get("server_files") or []
        storage_id = fields.get("cloud_storage_id")
        if server_files:
            root = self.fake.share_root
            if storage_id not in (None, ""):
                root = self.fake.cloud_storages.get(int(storage_id))
                if root is None:
                    raise ApiError(400, {"cloud_storage_id": [f"Cloud storage {storage_id} does not exist"]})
            if root is None:
                raise ApiError(400, {"server_files": ["The server has no share configured"]})
            sources = [(str(name), Path(root) / str(name)) for name in server_files]
        else:
            names = list(t.upload_order)
            if not names:
                raise ApiError(400, {"detail": "No media data found"})
            order = fields.get("upload_file_order") or []
            if order:
                if sorted(order) != sorted(names):
                    raise ApiError(400, {"upload_file_order": ["The list must contain every uploaded file once"]})
                names = list(order)
            assert t.upload_dir is not None
            sources = [(name, t.upload_dir / name) for name in names]
        if sorting == "lexicographical":
            sources.sort(key=lambda s: s[0])
        elif sorting == "natural":
            sources.sort(key=lambda s: _natural_key(s[0]))
        elif sorting == "random":
            random.Random(t.id).shuffle(sources)
        t.image_quality = quality
        t.data_state, t.data_message = "Queued", ""
        state = self.fake.state

        def work(rq: Request) -> None:
            with state.lock:
                t.data_state = "Started"
            frames = []
            for name, path in sources:
                if not path.is_file():
                    raise FileNotFoundError(f"File not found: {name}")
                try:
                    with Image.open(path) as im:
                        w, h = im.size
                        orientation = im.getexif().get(EXIF_ORIENTATION)
                except Exception:  # noqa: BLE001
                    raise ValueError(f"Unidentified image file: {name}") from None
                if orientation in (5, 6, 7, 8):  # CVAT applies the EXIF orientation: the frame is turned
                    w, h = h, w
                frames.append(Frame(name, w, h, path))
            with state.lock:
                t.frames = frames
                t.data_state = "Finished"

        rq = Request(self._rq_id("create", t), "create", t.id)
        self._start(rq, work)
        self._send(202, {"rq_id": rq.id})

    def _meta_json(self, t: Task) -> dict[str, Any]:
        return {"chunk_size": 72, "size": t.size, "image_quality": t.image_quality, "start_frame": 0,
                "stop_frame": max(0, t.size - 1), "frame_filter": "", "storage": "local",
                "frames": [{"width": f.width, "height": f.height, "name": f.name, "related_files": 0}
                           for f in t.frames],
                "deleted_frames": sorted(t.deleted_frames), "included_frames": None}

    def r_data_meta(self, method: str, tid: str) -> None:
        """`GET` the frames as CVAT built them (sizes after EXIF orientation) and the deleted frames;
        `PATCH {"deleted_frames": [...]}` hides frames (the COCO export still lists them, as on 2.23)."""
        st = self.fake.state
        with st.lock:
            t = self._task(tid)
            if not t.frames:
                raise ApiError(400, {"detail": "The task has no data"})
        if method == "PATCH":
            body = self._json_body()
            frames = body.get("deleted_frames", None)
            if not isinstance(frames, list) or not all(isinstance(f, int) and not isinstance(f, bool)
                                                       for f in frames):
                raise ApiError(400, {"deleted_frames": ["Expected a list of frame numbers."]})
            bad = [f for f in frames if not 0 <= f < t.size]
            if bad:
                raise ApiError(400, {"deleted_frames": [f"Invalid frame numbers: {bad}"]})
            with st.lock:
                t.deleted_frames = sorted(set(frames))
        elif method != "GET":
            raise self._not_allowed(method)
        with st.lock:
            self._send(200, self._meta_json(t))

    # -- TUS ---------------------------------------------------------------------------------------------

    def _tus_create(self, t: Task, kind: str) -> None:
        try:
            length = int(self.headers["Upload-Length"])
        except (KeyError, ValueError):
            raise ApiError(400, {"detail": "Upload-Length is required"}) from None
        meta = dict(p.strip().split(" ", 1) for p in (self.headers.get("Upload-Metadata") or "").split(",")
                    if " " in p.strip())
        try:
            name = base64.b64decode(meta.get("filename", "")).decode()
        except ValueError:
            name = ""
        if not name:
            raise ApiError(400, {"detail": "Upload-Metadata must give a filename"})
        file_id = uuid.uuid4().hex
        base = self.fake.root / "tasks" / str(t.id) / ("upload" if kind == "data" else "tus")
        base.mkdir(parents=True, exist_ok=True)
        path = base / (name.replace("\\", "/").rsplit("/", 1)[-1] if kind == "data" else file_id)
        path.write_bytes(b"")
        with self.fake.state.lock:
            t.tus[file_id] = {"name": path.name if kind == "data" else name, "length": length, "offset": 0,
                              "path": path, "kind": kind}
        # CVAT appends the file id to the full request URI: without the trailing slash the URL is wrong.
        self._send(201, headers={"Location": f"{self._origin()}{self.path}{file_id}", "Tus-Resumable": "1.0.0",
                                 "Upload-Offset": "0"})

    def r_tus_file(self, method: str, tid: str, kind: str, file_id: str) -> None:
        with self.fake.state.lock:
            t = self._task(tid)
            info = t.tus.get(file_id)
        if info is None or info["kind"] != kind:
            raise ApiError(404, {"detail": "Not found."})
        if not self.headers.get("Tus-Resumable"):
            raise ApiError(412, {"detail": "Tus-Resumable header is required"})
        tus_headers = {"Tus-Resumable": "1.0.0", "Upload-Offset": str(info["offset"])}
        if method == "HEAD":
            self._send(200, headers={**tus_headers, "Upload-Length": str(info["length"])})
            return
        if method != "PATCH":
            raise self._not_allowed(method)
        if self.headers.get("Content-Type") != "application/offset+octet-stream":
            raise ApiError(415, {"detail": "Content-Type must be application/offset+octet-stream"})
        if int(self.headers.get("Upload-Offset") or -1) != info["offset"]:
            raise ApiError(409, {"detail": "Upload-Offset does not match"})
        with open(info["path"], "ab") as out:
            for block in self._chunks():
                out.write(block)
        with self.fake.state.lock:
            info["offset"] = info["path"].stat().st_size
            if info["offset"] > info["length"]:
                raise ApiError(413, {"detail": "More data than Upload-Length"})
            if info["offset"] == info["length"] and kind == "data":
                t.upload_order.setdefault(info["name"])
        self._send(204, headers={"Tus-Resumable": "1.0.0", "Upload-Offset": str(info["offset"])})

    # -- annotations -------------------------------------------------------------------------------------

    def _start_import(self, t: Task, raw: bytes, fmt: str) -> None:
        if fmt != COCO:
            raise ApiError(400, {"detail": f"Unknown input format '{fmt}' (the fake imports {COCO} only)"})
        state = self.fake.state

        def work(rq: Request) -> None:
            doc = read_document(raw)
            with state.lock:
                task = state.tasks.get(t.id)
                if task is None:
                    raise ImportFailed("The task was deleted")
                if not task.frames:
                    raise ImportFailed("The task has no data")
                frames, labels = list(task.frames), list(state.task_labels(task))
            # converted outside the lock, as CVAT's worker process blocks no API request meanwhile
            shapes = import_coco(doc, frames, labels, state.next_id)
            with state.lock:
                task = state.tasks.get(t.id)
                if task is None:
                    raise ImportFailed("The task was deleted")
                task.shapes = shapes

        rq = Request(self._rq_id("import", t, "annotations"), "import", t.id, format=fmt)
        self._start(rq, work)
        self._send(202, {"rq_id": rq.id})

    def _annotation_file(self) -> bytes:
        got: dict[str, bytes] = {}

        class _Sink:
            def __init__(self, key: str):
                self.key, self.parts = key, []

            def write(self, b: bytes) -> None:
                self.parts.append(bytes(b))

            def close(self) -> None:
                got[self.key] = b"".join(self.parts)

        ctype = self.headers.get("Content-Type") or ""
        if ctype.startswith("multipart/form-data"):
            try:
                parse_multipart(self._chunks(), ctype, lambda name, fn: _Sink(name))
            except MultipartError as exc:
                raise ApiError(400, {"detail": f"Malformed multipart body: {exc}"}) from None
        if "annotation_file" not in got:
            raise ApiError(400, {"detail": "No such file were uploaded"})
        return got["annotation_file"]

    def r_annotations(self, method: str, tid: str) -> None:
        st = self.fake.state
        with st.lock:
            t = self._task(tid)
        fmt = self._q("format")
        h = self.headers
        if method == "GET":
            if fmt is None:
                with st.lock:
                    self._send(200, {"version": 0, "tags": [], "tracks": [],
                                     "shapes": [s.__dict__ for s in t.shapes]})
                return
            if self.fake.at_least(2, 32):
                raise ApiError(410, {"detail": "This endpoint is no longer supported. Use /dataset/export."})
            if self._q("action") == "download":
                self._serve_export(t, fmt)
                return
            self._legacy_export(t, fmt)
        elif method == "PUT":
            if self.fake.at_least(2, 38):
                raise ApiError(410, {"detail": "This endpoint is no longer supported. Use POST."})
            if not fmt:
                raise ApiError(400, {"detail": "Format is not specified"})
            self._start_import(t, self._annotation_file(), fmt)
        elif method == "POST":
            if h.get("Upload-Start"):
                if not fmt:
                    raise ApiError(400, {"detail": "Format is not specified"})
                self._send(202)
            elif h.get("Tus-Resumable") and h.get("Upload-Length"):
                self._tus_create(t, "annotations")
            elif h.get("Upload-Finish"):
                name = self._q("filename")
                if not fmt or not name:
                    raise ApiError(400, {"detail": "format and filename are required"})
                with st.lock:
                    info = next((i for i in t.tus.values() if i["kind"] == "annotations" and i["name"] == name
                                 and i["offset"] == i["length"]), None)
                if info is None:
                    raise ApiError(400, {"detail": f"No such file were uploaded: {name}"})
                self._start_import(t, info["path"].read_bytes(), fmt)
            elif not self.fake.at_least(2, 38):
                raise ApiError(400, {"detail": "No such file were uploaded"})
            else:
                if not fmt:
                    raise ApiError(400, {"detail": "Format is not specified"})
                self._start_import(t, self._annotation_file(), fmt)
        elif method == "DELETE":
            with st.lock:
                t.shapes = []
            self._send(204)
        else:
            raise self._not_allowed(method)

    # -- export ------------------------------------------------------------------------------------------

    def _export_request(self, t: Task, fmt: str) -> Request:
        """The running or a new export request of the task's annotations in `fmt`."""
        if fmt not in EXPORT_FORMATS:
            raise ApiError(400, {"detail": f"Unknown format '{fmt}' (the fake exports {COCO} only)"})
        st = self.fake.state
        rq_id = self._rq_id("export", t, "annotations", fmt)
        old = st.requests.get(rq_id)
        if old is not None and old.status in ("queued", "started"):
            return old
        if self.fake.at_least(2, 32):
            result_url = f"{self._origin()}/api/tasks/{t.id}/dataset/download?rq_id={quote(rq_id, safe='')}"
        else:
            result_url = f"{self._origin()}/api/tasks/{t.id}/annotations?format={quote(fmt)}&action=download"

        def work(rq: Request) -> None:
            with st.lock:
                task = st.tasks.get(t.id)
                if task is None:
                    raise ImportFailed("The task was deleted")
                doc = export_coco(task.frames, task.shapes, st.task_labels(task))
            data = export_zip(doc)
            with st.lock:
                rq.result, rq.result_url = data, result_url
                rq.result_name = f"task_{t.id}_annotations_{fmt.replace(' ', '_')}.zip"

        rq = Request(rq_id, "export", t.id, format=fmt)
        st.run_request(rq, work, self.fake.request_delay)
        return rq

    def r_export(self, method: str, tid: str) -> None:
        if method != "POST":
            raise self._not_allowed(method)
        fmt = self._q("format")
        if not fmt:
            raise ApiError(400, {"format": ["This field is required."]})
        with self.fake.state.lock:
            t = self._task(tid)
            rq = self._export_request(t, fmt)
        self._send(202, {"rq_id": rq.id})

    def _send_zip(self, rq: Request) -> None:
        assert rq.result is not None
        self._send(200, raw=rq.result, content_type="application/zip",
                   headers={"Content-Disposition": f'attachment; filename="{rq.result_name}"'})

    def r_download(self, method: str, tid: str) -> None:
        if method != "GET":
            raise self._not_allowed(method)
        if not self.fake.at_least(2, 32):
            raise ApiError(404, {"detail": "Not found."})
        with self.fake.state.lock:
            self._task(tid)
            rq = self.fake.state.requests.get(self._q("rq_id") or "")
        if rq is None or rq.task_id != int(tid):
            raise ApiError(404, {"detail": "Unknown export request"})
        if rq.status != "finished" or rq.result is None:
            raise ApiError(400, {"detail": "The export is not finished"})
        self._send_zip(rq)

    def _latest_export(self, t: Task, fmt: str) -> Request | None:
        return self.fake.state.requests.get(self._rq_id("export", t, "annotations", fmt))

    def _serve_export(self, t: Task, fmt: str) -> None:
        with self.fake.state.lock:
            self._task(str(t.id))
            rq = self._latest_export(t, fmt)
        if rq is None or rq.status != "finished" or rq.result is None:
            raise ApiError(400, {"detail": "The export is not ready"})
        self._send_zip(rq)

    def _legacy_export(self, t: Task, fmt: str) -> None:
        """CVAT < 2.32: `GET …/annotations?format=` starts the export (202) and says 201 once it is ready."""
        with self.fake.state.lock:
            rq = self._latest_export(t, fmt)
            if rq is not None and rq.status == "finished":
                self._send(201)
                return
            if rq is None or rq.status == "failed":
                self._export_request(t, fmt)
        self._send(202)


def free_port() -> int:
    """A loopback port nobody listens on (for "CVAT is down" tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


__all__ = ["Fault", "FakeCvat", "Recorded", "free_port"]
