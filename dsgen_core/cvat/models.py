"""Typed values the CVAT client takes and returns; secrets are kept out of every repr."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "AttributeSpec",
    "Credentials",
    "LabelSpec",
    "Project",
    "RequestStatus",
    "ServerInfo",
    "Task",
    "UploadFile",
    "UploadReport",
]

INPUT_TYPES = ("checkbox", "select", "radio", "text", "number")
LABEL_TYPES = ("any", "rectangle", "polygon", "mask", "polyline", "points", "ellipse", "cuboid", "skeleton", "tag")


@dataclass(frozen=True)
class Credentials:
    """How to authenticate. The secret never appears in repr/str, logs or error messages."""

    kind: str  # "login" (username+password → Token), "basic", "token" (a CVAT key), "pat" (Bearer, CVAT ≥ 2.48)
    username: str = ""
    secret: str = field(default="", repr=False)

    @classmethod
    def login(cls, username: str, password: str) -> Credentials:
        """Log in once with POST /api/auth/login and send `Authorization: Token <key>` afterwards."""
        return cls("login", username, password)

    @classmethod
    def basic(cls, username: str, password: str) -> Credentials:
        return cls("basic", username, password)

    @classmethod
    def token(cls, key: str) -> Credentials:
        """An existing key from /api/auth/login."""
        return cls("token", "", key)

    @classmethod
    def access_token(cls, pat: str) -> Credentials:
        """A personal access token (CVAT ≥ 2.48), sent as `Authorization: Bearer`."""
        return cls("pat", "", pat)

    def __str__(self) -> str:
        who = f" {self.username!r}" if self.username else ""
        return f"<{self.kind} credentials{who}>"


@dataclass(frozen=True)
class AttributeSpec:
    """A label attribute as CVAT declares it; values are strings in CVAT (number: [min, max, step])."""

    name: str
    input_type: str = "text"
    values: tuple[str, ...] = ("",)
    default_value: str | None = None
    mutable: bool = True

    def __post_init__(self) -> None:
        if self.input_type not in INPUT_TYPES:
            raise ValueError(f"attribute {self.name!r}: input_type must be one of {INPUT_TYPES}")
        object.__setattr__(self, "values", tuple(str(v) for v in self.values))

    def to_api(self) -> dict[str, Any]:
        default = self.default_value if self.default_value is not None else (self.values[0] if self.values else "")
        return {
            "name": self.name,
            "mutable": self.mutable,
            "input_type": self.input_type,
            "default_value": default,
            "values": list(self.values),
        }

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> AttributeSpec:
        return cls(
            name=d["name"],
            input_type=d.get("input_type", "text"),
            values=tuple(d.get("values") or ()),
            default_value=d.get("default_value"),
            mutable=bool(d.get("mutable", True)),
        )


@dataclass(frozen=True)
class LabelSpec:
    """A CVAT label: name, allowed shape type and declared attributes (`occluded` is built in)."""

    name: str
    type: str = "any"
    attributes: tuple[AttributeSpec, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in LABEL_TYPES:
            raise ValueError(f"label {self.name!r}: type must be one of {LABEL_TYPES}")
        object.__setattr__(self, "attributes", tuple(self.attributes))

    def to_api(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "attributes": [a.to_api() for a in self.attributes]}

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> LabelSpec:
        return cls(
            name=d["name"],
            type=d.get("type") or "any",
            attributes=tuple(AttributeSpec.from_api(a) for a in d.get("attributes") or ()),
        )


@dataclass(frozen=True)
class ServerInfo:
    url: str
    name: str
    version: str


@dataclass(frozen=True)
class Project:
    id: int
    name: str
    url: str  # web link


@dataclass(frozen=True)
class Task:
    """A task as CVAT reports it; `size` is the number of frames once data is in."""

    id: int
    name: str
    project_id: int | None
    size: int
    segment_size: int
    status: str
    url: str  # web link: <server>/tasks/<id>
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class RequestStatus:
    """One poll of `/api/requests/{rq_id}`."""

    rq_id: str
    status: str  # queued | started | finished | failed
    message: str = ""
    progress: float | None = None
    result_url: str | None = None

    @property
    def done(self) -> bool:
        return self.status in ("finished", "failed")


@dataclass(frozen=True)
class UploadFile:
    """One image to send: the frame name CVAT will show (flat, unique) and its bytes or path."""

    name: str
    path: Path | None = None
    data: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (self.path is None) == (self.data is None):
            raise ValueError("UploadFile needs exactly one of path or data")
        if self.path is not None:
            object.__setattr__(self, "path", Path(self.path))

    @functools.cached_property
    def size(self) -> int:
        """Bytes to send; read once (planning batches and framing multipart bodies ask many times)."""
        return len(self.data) if self.data is not None else os.path.getsize(self.path)  # type: ignore[arg-type]


@dataclass
class UploadReport:
    """What an image upload sent: per-request body sizes, so bounds can be checked and shown."""

    rq_id: str
    files: int
    bytes: int
    request_sizes: list[int] = field(default_factory=list)
    tus_files: int = 0
