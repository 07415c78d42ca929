"""The facade: the one surface that pages, the CLI and Python users call. Every call takes the acting user first.

Permission checks live here (and in `permissions`), never only in a page.
"""

from __future__ import annotations

import re
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from dsgen_core import permissions
from dsgen_core.app import App
from dsgen_core.catalog.models import AuditEntry, DatasetGroup, DatasetVersion, Job, LineageEdge, Organization
from dsgen_core.errors import InvalidRequest, NotFound, PermissionDenied
from dsgen_core.facade_access import AccessFacade
from dsgen_core.facade_curation import CurationFacade
from dsgen_core.facade_cvat import CvatFacade
from dsgen_core.facade_explore import ExploreFacade
from dsgen_core.facade_insights import InsightsFacade
from dsgen_core.facade_secrets import SecretsFacade
from dsgen_core.import_roots import ImportRootsFacade
from dsgen_core.importing import job as import_job
from dsgen_core.jobs import queue
from dsgen_core.lake.views import scan_params, scan_sql
from dsgen_core.users import Actor, actor_by_name, ensure_admin
from dsgen_core.validation import ValidationReport

DATASET_TYPES = ("RAW", "SOURCE", "PROCESSED", "FUSION")
MODALITIES = ("image", "video", "multispectral", "thermal", "depth", "other")
TASK_TYPES = ("detection", "segmentation", "classification", "keypoints", "tracking")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,199}$")
SPLIT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")


@dataclass
class VersionInfo:
    id: int
    group_id: int
    group_name: str
    split: str
    version: str
    status: str
    num_images: int
    num_annotations: int
    num_categories: int
    content_hash: str | None
    in_place: bool
    source_uri: str | None
    created_at: datetime
    ready_at: datetime | None
    error: str | None
    validation_report: ValidationReport
    parents: list[int] = field(default_factory=list)


@dataclass
class GroupInfo:
    id: int
    name: str
    description: str
    dataset_type: str
    modality: str
    task_types: list[str]
    format: str
    owner: str
    visibility: str
    created_at: datetime
    status: str  # of the newest version: READY, PROCESSING, ...
    num_images: int  # summed over the newest READY version of each split
    num_annotations: int
    num_categories: int
    versions: list[VersionInfo]
    role: str | None = None  # the asking user's role: viewer | editor | owner
    organization: str | None = None  # for visibility "organization"
    deleted_at: datetime | None = None


@dataclass
class ImportRequest:
    path: str
    group: str
    split: str = "train"
    dataset_type: str = "RAW"
    modality: str = "image"
    task_types: list[str] = field(default_factory=lambda: ["detection"])
    images_path: str | None = None
    annotations_path: str | None = None
    in_place: bool = False
    annotations_only: bool = False
    description: str = ""


@dataclass
class ImportStarted:
    job_id: int
    version_id: int
    group_id: int
    version: str


@dataclass
class JobInfo:
    id: int
    kind: str
    status: str
    stage: str
    processed: int
    total: int
    error: str | None
    log: str
    result: dict[str, Any] | None
    version_id: int | None
    created_at: datetime
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.status in queue.FINISHED

    @property
    def fraction(self) -> float:
        return min(1.0, self.processed / self.total) if self.total else (1.0 if self.finished else 0.0)


@dataclass
class ClassCount:
    category_id: int
    name: str
    supercategory: str | None
    images: int
    instances: int


@dataclass
class SampleImage:
    image_id: int
    file_name: str
    width: int
    height: int
    sha256: str | None
    thumb_path: Path | None
    image_path: Path | None
    boxes: list[tuple[float, float, float, float, str]]


def _next_version(existing: list[str]) -> str:
    """v1.0.0 first, then the minor number goes up per group × split."""
    if not existing:
        return "1.0.0"
    parsed = sorted(tuple(int(x) for x in v.split(".")) for v in existing)
    major, minor, _ = parsed[-1]
    return f"{major}.{minor + 1}.0"


class Dsgen(InsightsFacade, ExploreFacade, CvatFacade, CurationFacade, AccessFacade, ImportRootsFacade,
            SecretsFacade):
    """The facade object; open it once per process and share it."""

    def __init__(self, app: App):
        from dsgen_core.importing.uploads import sweep_abandoned

        self.app = app
        self.default_actor, self.admin_password = ensure_admin(app.catalog)
        sweep_abandoned(app)

    @classmethod
    def open(cls, home: str | Path | None = None) -> Dsgen:
        from dsgen_core.config import Settings

        return cls(App.open(Settings.from_env(home) if home else None))

    def actor(self, username: str) -> Actor:
        return actor_by_name(self.app.catalog, username)

    # ----- datasets -------------------------------------------------------------------------

    def list_groups(self, actor: Actor) -> list[GroupInfo]:
        with self.app.catalog.session() as s:
            permissions.require_login(actor)
            groups = s.scalars(
                select(DatasetGroup)
                .where(DatasetGroup.deleted_at.is_(None), permissions.readable_clause(actor))
                .order_by(DatasetGroup.id)
            ).all()
            return [self._group_info(s, g, actor) for g in groups]

    def get_group(self, actor: Actor, group: int | str) -> GroupInfo:
        with self.app.catalog.session() as s:
            g = self._load_group(s, group, actor, "viewer")
            return self._group_info(s, g, actor)

    def get_version(self, actor: Actor, version_id: int) -> VersionInfo:
        with self.app.catalog.session() as s:
            v = self._load_version(s, version_id, actor, "viewer")
            return self._version_info(s, v)

    def _load_group(self, s, group: int | str, actor: Actor | None = None,  # noqa: ANN001
                    needed: str | None = None) -> DatasetGroup:
        """Load a live group; with `needed`, also check the actor's role. A group the actor may not
        read gets the very message of a missing one, so names and ids do not leak."""
        q = select(DatasetGroup).where(DatasetGroup.deleted_at.is_(None))
        q = q.where(DatasetGroup.id == group) if isinstance(group, int) else q.where(DatasetGroup.name == group)
        g = s.scalars(q).first()
        if g is None:
            raise NotFound(f"dataset group {group!r} not found")
        if needed:
            try:
                permissions.require_role(actor, g, needed)
            except NotFound:
                raise NotFound(f"dataset group {group!r} not found") from None
        return g

    def _load_version(self, s, version_id: int, actor: Actor | None = None,  # noqa: ANN001
                      needed: str | None = None) -> DatasetVersion:
        v = s.get(DatasetVersion, int(version_id))
        if v is None or v.deleted_at is not None or v.group.deleted_at is not None:
            raise NotFound(f"dataset version {version_id} not found")
        if needed:
            try:
                permissions.require_role(actor, v.group, needed)
            except NotFound:
                raise NotFound(f"dataset version {version_id} not found") from None
        return v

    def _version_info(self, s, v: DatasetVersion) -> VersionInfo:  # noqa: ANN001
        parents = list(s.scalars(select(LineageEdge.parent_version_id).where(LineageEdge.child_version_id == v.id)))
        return VersionInfo(
            id=v.id, group_id=v.group_id, group_name=v.group.name, split=v.split, version=v.version,
            status=v.status, num_images=v.num_images, num_annotations=v.num_annotations,
            num_categories=v.num_categories, content_hash=v.content_hash, in_place=v.in_place,
            source_uri=v.source_uri, created_at=v.created_at, ready_at=v.ready_at, error=v.error,
            validation_report=ValidationReport.from_dict(v.validation_report), parents=parents,
        )

    def _group_info(self, s, g: DatasetGroup, actor: Actor | None = None) -> GroupInfo:  # noqa: ANN001
        versions = [self._version_info(s, v) for v in g.versions if v.deleted_at is None]
        newest_ready: dict[str, VersionInfo] = {}
        for v in versions:
            if v.status == "READY":
                newest_ready[v.split] = v
        status = versions[-1].status if versions else "EMPTY"
        owner = g.owner_id
        from dsgen_core.catalog.models import User

        owner_name = s.get(User, owner).username if owner else ""
        return GroupInfo(
            id=g.id, name=g.name, description=g.description, dataset_type=g.dataset_type, modality=g.modality,
            task_types=list(g.task_types or []), format=g.format, owner=owner_name, visibility=g.visibility,
            created_at=g.created_at, status=status,
            num_images=sum(v.num_images for v in newest_ready.values()),
            num_annotations=sum(v.num_annotations for v in newest_ready.values()),
            num_categories=max((v.num_categories for v in newest_ready.values()), default=0),
            versions=versions,
            role=permissions.role_of(actor, g, s) if actor else None,
            organization=s.get(Organization, g.org_id).name if g.org_id else None,
            deleted_at=g.deleted_at,
        )

    # ----- import ---------------------------------------------------------------------------

    def _validate_request(self, req: ImportRequest) -> None:
        if not NAME_RE.match(req.group or ""):
            raise InvalidRequest(
                f"group name {req.group!r}: use 1–200 letters, digits, spaces, '_', '-' or '.', starting with a letter or digit"
            )
        if not SPLIT_RE.match(req.split or ""):
            raise InvalidRequest(f"split {req.split!r}: use letters, digits, '_' or '-' (e.g. train, val, test)")
        if req.dataset_type not in DATASET_TYPES:
            raise InvalidRequest(f"dataset type {req.dataset_type!r}: expected one of {', '.join(DATASET_TYPES)}")
        if req.modality not in MODALITIES:
            raise InvalidRequest(f"modality {req.modality!r}: expected one of {', '.join(MODALITIES)}")
        bad = [t for t in req.task_types if t not in TASK_TYPES]
        if bad:
            raise InvalidRequest(f"task types {bad}: expected some of {', '.join(TASK_TYPES)}")
        if not Path(req.path).expanduser().exists():
            raise InvalidRequest(f"{req.path}: no such file or folder")
        if req.in_place and req.annotations_only:
            raise InvalidRequest("--in-place registers image files; it cannot be combined with annotations only")

    def check_import_path(self, actor: Actor, req: ImportRequest) -> ValidationReport:
        """The "check path" step: run every check an import would, write nothing to the catalog or storage."""
        # Imported here: parsing and checking code is heavy and a reading process never needs it.
        from dsgen_core.importing.pipeline import SourceSpec, run_checks

        permissions.require_login(actor)
        label = self._authorize_import(actor, req)
        self._validate_request(req)
        report = ValidationReport()
        work = self.app.settings.tmp_root / f"check-{uuid.uuid4().hex}"
        spec = SourceSpec(req.path, label, req.images_path, req.annotations_path, req.annotations_only, req.in_place)
        checked = None
        try:
            checked = run_checks(spec, report, work, self.path_policy(actor), extract=False)
            return report
        finally:
            if checked is not None and checked.source is not None:
                checked.source.cleanup()
            shutil.rmtree(work, ignore_errors=True)

    def start_import(self, actor: Actor, req: ImportRequest) -> ImportStarted:
        """Create (or reuse) the group, reserve the next version number and queue the import job."""
        permissions.require_login(actor)
        label = self._authorize_import(actor, req)
        self._validate_request(req)
        for _ in range(5):
            try:
                with self.app.catalog.session() as s:
                    g = s.scalars(select(DatasetGroup).where(DatasetGroup.name == req.group)).first()
                    if g is not None and g.deleted_at is not None:
                        raise InvalidRequest(f"group {req.group!r} is deleted; restore it or pick another name")
                    if g is None:
                        g = DatasetGroup(
                            name=req.group, description=req.description, dataset_type=req.dataset_type,
                            modality=req.modality, task_types=list(req.task_types), format="coco",
                            owner_id=actor.id, visibility="private",
                        )
                        s.add(g)
                        s.flush()
                        s.add(AuditEntry(user_id=actor.id, action="group.create", target_type="group",
                                         target_id=g.id, details={"name": g.name}))
                    elif not permissions.can_read(actor, g):
                        # Names are unique, so this much is unavoidable; nothing else about it is told.
                        raise PermissionDenied(f"the group name {req.group!r} is taken; pick another name")
                    else:
                        permissions.require_edit(actor, g)
                    existing = list(s.scalars(select(DatasetVersion.version).where(
                        DatasetVersion.group_id == g.id, DatasetVersion.split == req.split)))
                    v = DatasetVersion(
                        group_id=g.id, split=req.split, version=_next_version(existing), status="PENDING",
                        in_place=req.in_place, source_uri=str(Path(req.path).expanduser().resolve()),
                        created_by=actor.id,
                    )
                    s.add(v)
                    s.flush()
                    group_id, version_id, version = g.id, v.id, v.version
                    s.add(AuditEntry(user_id=actor.id, action="import.start", target_type="version",
                                     target_id=v.id, details={"path": req.path, "split": req.split,
                                                              "version": v.version, "in_place": req.in_place}))
                break
            except IntegrityError:
                continue  # a concurrent import took the name or version number: read again
        else:
            raise InvalidRequest("could not reserve a version number; try again")
        params = {
            "version_id": version_id, "source_path": str(Path(req.path).expanduser().resolve()),
            "images_path": req.images_path, "annotations_path": req.annotations_path,
            "in_place": req.in_place, "annotations_only": req.annotations_only, "source_label": label,
        }
        job_id = queue.enqueue(self.app, import_job.IMPORT, params, actor.id, version_id=version_id)
        return ImportStarted(job_id=job_id, version_id=version_id, group_id=group_id, version=version)

    # ----- jobs -----------------------------------------------------------------------------

    def get_job(self, actor: Actor, job_id: int) -> JobInfo:
        with self.app.catalog.session() as s:
            j = s.get(Job, int(job_id))
            if j is None or not (actor.is_admin or j.created_by == actor.id):
                raise NotFound(f"job {job_id} not found")
            return _job_info(j)

    def list_jobs(self, actor: Actor, limit: int = 50) -> list[JobInfo]:
        with self.app.catalog.session() as s:
            q = select(Job).order_by(Job.id.desc()).limit(limit)
            if not actor.is_admin:
                q = q.where(Job.created_by == actor.id)
            return [_job_info(j) for j in s.scalars(q)]

    def cancel_job(self, actor: Actor, job_id: int) -> JobInfo:
        with self.app.catalog.session() as s:
            j = s.get(Job, int(job_id))
            if j is None or not (actor.is_admin or j.created_by == actor.id):
                raise NotFound(f"job {job_id} not found")
            if j.status == queue.QUEUED:
                j.status, j.finished_at, j.error = queue.CANCELLED, datetime.now(), "cancelled before it started"
                cancelled_queued = True
            else:
                j.cancel_requested = True
                cancelled_queued = False
            s.add(AuditEntry(user_id=actor.id, action="job.cancel", target_type="job", target_id=j.id))
        if cancelled_queued:
            kind = queue.REGISTRY.get(j.kind)
            if kind and kind.on_fail:
                kind.on_fail(self.app, j, "cancelled")
        return self.get_job(actor, job_id)

    def run_job_here(self, actor: Actor, job_id: int, on_progress=None) -> JobInfo:  # noqa: ANN001
        """Claim and run one queued job in this process (the CLI's --wait when no worker is up)."""
        self.get_job(actor, job_id)
        worker = queue.new_worker_id()
        if queue.claim(self.app, worker, job_id=job_id) is not None:
            queue.run_claimed(self.app, job_id, on_progress=on_progress)
        return self.get_job(actor, job_id)

    def live_workers(self) -> int:
        return queue.live_workers(self.app)

    # ----- reading a version ----------------------------------------------------------------

    def _ready_folder(self, actor: Actor, version_id: int) -> Path:
        with self.app.catalog.session() as s:
            v = self._load_version(s, version_id, actor, "viewer")
            if v.status != "READY":
                raise InvalidRequest(f"version {version_id} is {v.status}, not READY")
            return self.app.settings.lake_root / v.lake_path

    def class_counts(self, actor: Actor, version_id: int) -> list[ClassCount]:
        folder = self._ready_folder(actor, version_id)
        con = duckdb.connect()
        try:
            rows = con.execute(
                "SELECT c.category_id, c.name, c.supercategory, count(DISTINCT a.image_id), count(a.annotation_id) "
                "FROM read_parquet($cats) c LEFT JOIN read_parquet($anns) a USING (category_id) "
                "GROUP BY ALL ORDER BY 5 DESC, 2",
                scan_params(folder, cats="categories", anns="annotations"),
            ).fetchall()
        finally:
            con.close()
        return [ClassCount(*r) for r in rows]

    def sample_images(self, actor: Actor, version_id: int, limit: int = 12, offset: int = 0) -> list[SampleImage]:
        folder = self._ready_folder(actor, version_id)
        con = duckdb.connect()
        try:
            imgs = con.execute(
                "SELECT image_id, file_name, width, height, sha256, uri FROM read_parquet($p) "
                "ORDER BY image_id LIMIT $n OFFSET $o",
                {"p": str(folder / "images.parquet"), "n": int(limit), "o": int(offset)},
            ).fetchall()
            ids = [r[0] for r in imgs]
            anns = scan_sql(folder, "annotations", "a")
            # scan_sql holds only fixed names; values are bound
            boxes = con.execute(
                f"SELECT a.image_id, a.bbox_x, a.bbox_y, a.bbox_w, a.bbox_h, c.name FROM {anns} a "  # noqa: S608
                "JOIN read_parquet($c) c USING (category_id) WHERE a.image_id IN (SELECT unnest($ids)) "
                "AND a.bbox_w IS NOT NULL ORDER BY a.annotation_id",
                {**scan_params(folder, a="annotations", c="categories"), "ids": ids},
            ).fetchall()
        finally:
            con.close()
        by_image: dict[int, list] = {}
        for image_id, x, y, w, h, name in boxes:
            by_image.setdefault(image_id, []).append((x, y, w, h, name))
        out = []
        for image_id, file_name, width, height, sha, uri in imgs:
            thumb = import_job.thumb_path(self.app, sha) if sha else None
            out.append(SampleImage(
                image_id=image_id, file_name=file_name, width=width, height=height, sha256=sha,
                thumb_path=thumb if thumb and thumb.exists() else None,
                image_path=self.app.storage.local_path(uri) if uri else None,
                boxes=by_image.get(image_id, []),
            ))
        return out

    def export_coco(self, actor: Actor, version_id: int, out_path: Path) -> Path:
        """Write the version as COCO JSON (the round trip of an unchanged import reproduces its input)."""
        from dsgen_core.formats.coco_writer import write_coco
        from dsgen_core.lake.store import read_tables

        folder = self._ready_folder(actor, version_id)
        tables = read_tables(folder)
        tables.meta.pop("source_path", None)
        out_path = Path(out_path)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        write_coco(tables, out_path)
        with self.app.catalog.session() as s:
            s.add(AuditEntry(user_id=actor.id, action="export.coco", target_type="version", target_id=version_id,
                             details={"path": str(out_path)}))
        return out_path

    def counts(self, actor: Actor) -> dict[str, int]:
        """How many groups and versions the actor may see."""
        permissions.require_login(actor)
        visible = (DatasetGroup.deleted_at.is_(None), permissions.readable_clause(actor))
        with self.app.catalog.session() as s:
            return {
                "groups": s.scalar(select(func.count(DatasetGroup.id)).where(*visible)),
                "versions": s.scalar(
                    select(func.count(DatasetVersion.id)).join(DatasetGroup)
                    .where(*visible, DatasetVersion.deleted_at.is_(None))
                ),
            }


def _job_info(j: Job) -> JobInfo:
    return JobInfo(
        id=j.id, kind=j.kind, status=j.status, stage=j.stage, processed=j.processed, total=j.total,
        error=j.error, log=j.log, result=j.result, version_id=j.version_id, created_at=j.created_at,
        finished_at=j.finished_at,
    )
