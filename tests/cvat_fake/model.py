"""State of the fake CVAT: users, projects, labels, tasks with frames and shapes, asynchronous requests.

Annotations are kept the way CVAT keeps them (shapes with points, a built-in `occluded` and
`rotation`, attribute values as strings keyed by declared attribute), not as the COCO that came in.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INPUT_TYPES = ("checkbox", "select", "radio", "text", "number")
LABEL_TYPES = ("any", "rectangle", "polygon", "mask", "polyline", "points", "ellipse", "cuboid", "skeleton", "tag")


class ApiError(Exception):
    """An HTTP error answer: status + JSON body."""

    def __init__(self, status: int, body: Any):
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


@dataclass
class Attribute:
    id: int
    name: str
    input_type: str
    values: list[str]
    default_value: str
    mutable: bool = True

    def api(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "mutable": self.mutable, "input_type": self.input_type,
                "default_value": self.default_value, "values": list(self.values)}

    def to_coco(self, value: str) -> Any:
        """How CVAT's COCO export renders a stored string value."""
        if self.input_type == "checkbox":
            return value.lower() == "true"
        if self.input_type == "number":
            return float(value)
        return value

    def from_coco(self, value: Any) -> str:
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, float) and value.is_integer() and self.input_type != "number":
            text = str(int(value))
        else:
            text = str(value)
        if self.input_type in ("select", "radio") and text not in self.values:
            raise ValueError(f"invalid value {text!r} of attribute {self.name!r}; allowed: {self.values}")
        return text


@dataclass
class Label:
    id: int
    name: str
    type: str
    color: str
    attributes: list[Attribute]
    project_id: int | None = None
    task_id: int | None = None

    def api(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "color": self.color, "type": self.type,
                "attributes": [a.api() for a in self.attributes], "project_id": self.project_id,
                "task_id": self.task_id, "parent_id": None, "has_parent": False, "sublabels": []}

    def attribute(self, name: str) -> Attribute | None:
        return next((a for a in self.attributes if a.name == name), None)


@dataclass
class Project:
    id: int
    name: str
    owner: str
    org: str | None
    labels: list[Label]


@dataclass
class Frame:
    name: str
    width: int
    height: int
    path: Path


@dataclass
class Shape:
    """A CVAT shape. rectangle: points = [x1, y1, x2, y2]; polygon: `polygons` = flat point lists;
    mask: `rle` = COCO uncompressed RLE {"counts": [...], "size": [h, w]}."""

    id: int
    frame: int
    label_id: int
    type: str
    points: list[float] = field(default_factory=list)
    polygons: list[list[float]] = field(default_factory=list)
    rle: dict[str, Any] | None = None
    occluded: bool = False
    rotation: float = 0.0
    attributes: dict[int, str] = field(default_factory=dict)  # attribute id → value (a string, as in CVAT)
    group: int = 0
    source: str = "file"


@dataclass
class Task:
    id: int
    name: str
    owner: str
    org: str | None
    project_id: int | None
    segment_size: int
    overlap: int
    own_labels: list[Label]
    created: float = field(default_factory=time.time)
    image_quality: int | None = None
    frames: list[Frame] = field(default_factory=list)
    shapes: list[Shape] = field(default_factory=list)
    upload_dir: Path | None = None
    upload_order: dict[str, None] = field(default_factory=dict)  # file names in arrival order (a dict: O(1) `in`)
    upload_open: bool = False  # between Upload-Start and Upload-Finish
    data_state: str = ""  # legacy /status: Queued | Started | Finished | Failed
    data_message: str = ""
    tus: dict[str, dict[str, Any]] = field(default_factory=dict)  # file id → {"name", "length", "offset", "path"}
    deleted_frames: list[int] = field(default_factory=list)  # hidden in CVAT's UI, still in its COCO export

    @property
    def size(self) -> int:
        return len(self.frames)


_STAGES = ("queued", "started")


@dataclass
class Request:
    """An asynchronous CVAT request. Polls see it move queued → started → finished/failed, one step per poll."""

    id: str
    action: str  # create | import | export
    task_id: int
    status: str = "queued"  # the real state of the work
    message: str = ""
    progress: float = 0.0
    result_url: str | None = None
    result: bytes | None = None
    result_name: str = ""
    format: str = ""
    polls: int = 0
    created: float = field(default_factory=time.time)

    def visible_status(self) -> str:
        real = {"queued": 0, "started": 1}.get(self.status, 2)
        shown = min(real, self.polls)
        self.polls += 1
        return _STAGES[shown] if shown < 2 else self.status


class State:
    """Everything the fake server knows; every access holds `lock`."""

    def __init__(self, root: Path):
        self.root = root
        self.lock = threading.RLock()
        self.users: dict[str, str] = {}
        self.tokens: dict[str, str] = {}  # key → username (login tokens)
        self.access_tokens: dict[str, str] = {}  # PAT → username
        self.sessions: dict[str, str] = {}  # sessionid → username
        self.projects: dict[int, Project] = {}
        self.tasks: dict[int, Task] = {}
        self.requests: dict[str, Request] = {}
        self._ids: dict[str, int] = {}

    def next_id(self, kind: str) -> int:
        with self.lock:
            self._ids[kind] = self._ids.get(kind, 0) + 1
            return self._ids[kind]

    # -- labels --------------------------------------------------------------------------------------

    def make_labels(self, specs: Any, project_id: int | None = None, task_id: int | None = None) -> list[Label]:
        """Validate label specs as CVAT's serializer does; 400 on bad input."""
        if not isinstance(specs, list):
            raise ApiError(400, {"labels": ["Expected a list of items."]})
        labels: list[Label] = []
        for i, spec in enumerate(specs):
            if not isinstance(spec, dict) or not str(spec.get("name") or "").strip():
                raise ApiError(400, {"labels": [{"name": ["This field is required."]}]})
            name = str(spec["name"])
            if any(lab.name == name for lab in labels):
                raise ApiError(400, {"labels": [f"Duplicate label name: {name}"]})
            ltype = spec.get("type") or "any"
            if ltype not in LABEL_TYPES:
                raise ApiError(400, {"labels": [{"type": [f'"{ltype}" is not a valid choice.']}]})
            attrs: list[Attribute] = []
            for a in spec.get("attributes") or []:
                aname = str(a.get("name") or "")
                itype = a.get("input_type")
                values = a.get("values")
                if not aname or itype not in INPUT_TYPES or not isinstance(values, list):
                    raise ApiError(400, {"labels": [{"attributes": [
                        "Each attribute needs name, input_type (checkbox|select|radio|text|number) and values"]}]})
                values = [str(v) for v in values]
                if itype in ("select", "radio") and not values:
                    raise ApiError(400, {"labels": [{"attributes": [f"Attribute {aname}: values are required"]}]})
                default = a.get("default_value")
                default = str(default) if default is not None else (values[0] if values else "")
                if itype in ("select", "radio") and default not in values:
                    raise ApiError(400, {"labels": [{"attributes": [
                        f"Attribute {aname}: default value must be one of the values"]}]})
                attrs.append(Attribute(self.next_id("attribute"), aname, itype, values, default,
                                       bool(a.get("mutable", True))))
            color = spec.get("color") or f"#{(i * 2654435761) & 0xFFFFFF:06x}"
            labels.append(Label(self.next_id("label"), name, ltype, color, attrs, project_id, task_id))
        return labels

    def task_labels(self, task: Task) -> list[Label]:
        if task.project_id is not None:
            project = self.projects.get(task.project_id)
            return project.labels if project else []
        return task.own_labels

    def all_labels(self) -> list[Label]:
        return [lab for p in self.projects.values() for lab in p.labels] + [
            lab for t in self.tasks.values() for lab in t.own_labels]

    def sibling_labels(self, label: Label) -> list[Label]:
        """The labels sharing `label`'s project or task (names are unique among them)."""
        if label.project_id is not None and label.project_id in self.projects:
            return self.projects[label.project_id].labels
        task = self.tasks.get(label.task_id or -1)
        return task.own_labels if task else [label]

    # -- requests ------------------------------------------------------------------------------------

    def run_request(self, rq: Request, work: Callable[[Request], None], delay: float) -> None:
        """Run `work` in a background thread; exceptions fail the request with their message."""

        def target() -> None:
            if delay:
                time.sleep(delay)
            with self.lock:
                rq.status = "started"
            try:
                work(rq)
            except Exception as exc:  # noqa: BLE001 - becomes the request's message, as in CVAT
                with self.lock:
                    rq.status, rq.message = "failed", f"{type(exc).__name__}: {exc}"
                    task = self.tasks.get(rq.task_id)
                    if rq.action == "create" and task is not None:
                        task.data_state, task.data_message = "Failed", rq.message
                return
            with self.lock:
                rq.status, rq.progress = "finished", 1.0

        with self.lock:
            self.requests[rq.id] = rq
        threading.Thread(target=target, name=f"fake-cvat-{rq.action}", daemon=True).start()

    def snapshot(self, task_id: int) -> Task:
        with self.lock:
            return copy.deepcopy(self.tasks[task_id])
