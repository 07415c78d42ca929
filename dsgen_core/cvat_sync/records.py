"""What the facade hands out about connections, exports and pulls: plain dataclasses, never a secret."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dsgen_core.catalog.cvat_models import CvatConnection, CvatExport, CvatExportTask
from dsgen_core.errors import InvalidRequest

AUTH_KINDS = ("login", "basic", "token", "pat")


@dataclass
class ConnectionInfo:
    """A saved CVAT connection as its owner sees it: no secret, only whether one is stored."""

    id: int
    name: str
    url: str
    org: str | None
    auth_kind: str
    username: str
    created_at: datetime
    share_root: str | None = None  # this machine's folder CVAT sees as its share (or cloud storage) root
    cloud_storage_id: int | None = None

    def __str__(self) -> str:
        who = f" as {self.username}" if self.username else ""
        where = f"; share {self.share_root}" if self.share_root else ""
        if self.share_root and self.cloud_storage_id is not None:
            where += f" = cloud storage {self.cloud_storage_id}"
        return f"{self.name} ({self.url}{who}{where})"


@dataclass
class ExportTaskInfo:
    part: int
    name: str
    task_id: int | None
    url: str | None
    state: str
    num_images: int


@dataclass
class ExportInfo:
    id: int
    version_id: int
    server_url: str
    query: str
    curation_seq: int
    num_images: int
    project_name: str
    project_id: int | None
    task_name: str
    max_images_per_task: int
    segment_size: int
    image_quality: int
    preload_annotations: bool
    status: str
    job_id: int | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    tasks: list[ExportTaskInfo] = field(default_factory=list)
    created_by: int | None = None
    send_references: bool = False
    exif_remedy: str | None = None

    @property
    def links(self) -> list[str]:
        return [t.url for t in self.tasks if t.url]


@dataclass
class ExportRequest:
    """Everything the export page or `dsgen cvat export` asks for."""

    version_id: int
    connection: int | str
    project: str
    task_name: str
    query: str = ""
    max_images_per_task: int = 1000
    segment_size: int = 100
    image_quality: int = 95
    preload_annotations: bool = True
    send_references: bool = False  # CVAT reads the images from its share / cloud storage: no bytes sent
    # images with an EXIF orientation (CVAT shows them turned): "rotate" or "as-is"; None refuses such images
    exif: str | None = None


@dataclass(frozen=True)
class OrientedImage:
    """An image whose EXIF orientation makes viewers, CVAT among them, show it otherwise than stored."""

    image_id: int
    file_name: str
    orientation: int

    def __str__(self) -> str:
        from dsgen_core.cvat_sync.orientation import DESCRIPTIONS

        return f"{self.file_name} ({DESCRIPTIONS[self.orientation]})"


@dataclass
class ExportPreview:
    """What an export would send (nothing is sent): its tasks, and what needs a choice first."""

    version_id: int
    connection: str
    num_images: int
    num_tasks: int
    task_names: list[str]
    oriented: list[OrientedImage]
    exif: str | None
    send_references: bool

    @property
    def needs_exif_choice(self) -> bool:
        return bool(self.oriented) and self.exif is None


class ExifChoiceNeeded(InvalidRequest):
    """The subset has images with an EXIF orientation and the request did not say what to do with them."""

    def __init__(self, oriented: list[OrientedImage], total: int):
        super().__init__(exif_refusal(oriented, total))
        self.oriented = oriented


def exif_refusal(oriented: list[OrientedImage], total: int) -> str:
    """Why an export with EXIF-oriented images needs a choice, and the choices."""
    examples = ", ".join(map(str, oriented[:3])) + (f" and {len(oriented) - 3} more" if len(oriented) > 3 else "")
    return (f"{len(oriented)} of the {total} images carry an EXIF orientation ({examples}): CVAT shows them turned "
            "while their boxes are in the stored pixels' coordinates, so the boxes would land wrong. Choose what to "
            "do with them: 'rotate' sends them upright with every shape turned exactly with them (and turns CVAT's "
            "shapes back on pull-back), 'as-is' sends images and shapes unchanged (right when the annotations were "
            "made on the upright image)")


@dataclass
class ExportStarted:
    export_id: int
    job_id: int
    num_images: int
    num_tasks: int


@dataclass
class PullStarted:
    pull_id: int
    job_id: int
    version_id: int
    version: str


def connection_info(c: CvatConnection) -> ConnectionInfo:
    return ConnectionInfo(id=c.id, name=c.name, url=c.url, org=c.org, auth_kind=c.auth_kind, username=c.username,
                          created_at=c.created_at, share_root=c.share_root, cloud_storage_id=c.cloud_storage_id)


def export_info(e: CvatExport, tasks: list[CvatExportTask]) -> ExportInfo:
    return ExportInfo(
        id=e.id, version_id=e.version_id, server_url=e.server_url, query=e.query, curation_seq=e.curation_seq,
        num_images=e.num_images, project_name=e.project_name, project_id=e.project_id, task_name=e.task_name,
        max_images_per_task=e.max_images_per_task, segment_size=e.segment_size, image_quality=e.image_quality,
        preload_annotations=e.preload_annotations, status=e.status, job_id=e.job_id, error=e.error,
        created_at=e.created_at, finished_at=e.finished_at, created_by=e.created_by,
        send_references=bool(e.send_references), exif_remedy=e.exif_remedy,
        tasks=[ExportTaskInfo(t.part, t.name, t.task_id, t.url, t.state, len(t.image_ids or []))
               for t in sorted(tasks, key=lambda t: t.part)],
    )


def summary_dict(obj: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(obj)
