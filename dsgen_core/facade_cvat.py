"""Facade methods for the CVAT round trip: connections, exports (jobs), pull-back preview and commit.

A mixin of `dsgen_core.api.Dsgen`; every call takes the acting user first. Exporting needs read
access to the version, pulling into a group needs edit access. Connection secrets never leave the
catalog through these calls: they return `ConnectionInfo` without the secret.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dsgen_core import permissions
from dsgen_core.catalog.cvat_models import CvatConnection, CvatExport, CvatExportTask, CvatPull
from dsgen_core.catalog.models import AuditEntry, DatasetVersion
from dsgen_core.cvat_sync import jobs as cvat_jobs
from dsgen_core.cvat_sync.records import (
    AUTH_KINDS,
    ConnectionInfo,
    ExifChoiceNeeded,
    ExportInfo,
    ExportPreview,
    ExportRequest,
    ExportStarted,
    OrientedImage,
    PullStarted,
    connection_info,
    export_info,
)
from dsgen_core.cvat_sync.secret_store import seal
from dsgen_core.errors import InvalidRequest, NotFound
from dsgen_core.jobs import queue

if TYPE_CHECKING:
    from dsgen_core.app import App
    from dsgen_core.catalog.models import DatasetGroup
    from dsgen_core.cvat_sync.diff import PullDiff
    from dsgen_core.users import Actor

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,99}$")
MAX_TASK_IMAGES = 100_000


@dataclass
class PullPreview:
    """What a pull would change; commit it with `commit_pull(actor, pull_id)`."""

    pull_id: int
    export_id: int
    task_ids: list[int]
    source_version_id: int
    group: str
    split: str
    diff: PullDiff


@dataclass
class _ExportPlan:
    """An export request checked against the catalog: what a preview shows and a start writes."""

    preview: ExportPreview
    version: DatasetVersion
    connection: CvatConnection
    ids: list[int]
    seq: int
    names: list[str]
    parts: list[list[int]]


def task_id_of(ref: int | str) -> int:
    """A task id from `12`, `"12"` or a CVAT link such as `https://cvat/tasks/12` or `…/tasks/12/jobs/3`."""
    if isinstance(ref, int):
        return ref
    text = str(ref).strip()
    if text.isdigit():
        return int(text)
    m = re.search(r"/tasks/(\d+)", urlparse(text).path)
    if not m:
        raise InvalidRequest(f"{ref!r} is neither a CVAT task id nor a task link (…/tasks/<id>)")
    return int(m.group(1))


def _share_root(share_root: str | None, cloud_storage_id: int | None) -> str | None:
    """A connection's share folder: an existing absolute folder of this machine, stored resolved."""
    if cloud_storage_id is not None and (not isinstance(cloud_storage_id, int) or cloud_storage_id < 1):
        raise InvalidRequest(f"cloud storage id {cloud_storage_id!r}: expected CVAT's id of it, a whole number >= 1")
    if not share_root:
        if cloud_storage_id is not None:
            raise InvalidRequest("a cloud storage needs the share folder too: the folder of this machine that holds "
                                 "what the cloud storage holds, under the same relative paths")
        return None
    path = Path(share_root)
    if not path.is_absolute() or not path.is_dir():
        raise InvalidRequest(f"share folder {share_root!r}: expected an absolute path of an existing folder on the "
                             "dsgen server")
    return str(path.resolve())


class CvatFacade:
    """Mixin for Dsgen: needs `self.app`, `self._load_version`, `self._load_group`."""

    app: App
    _load_version: Callable[..., DatasetVersion]
    _load_group: Callable[..., DatasetGroup]
    require_server_path: Callable[..., Path]

    # ----- connections ----------------------------------------------------------------------
    def add_cvat_connection(self, actor: Actor, name: str, url: str, *, secret: str, username: str = "",
                            auth_kind: str = "login", org: str | None = None, check: bool = True,
                            share_root: str | None = None, cloud_storage_id: int | None = None) -> ConnectionInfo:
        """Save a CVAT server + credentials for this user; with `check`, log in first (clear errors for a
        wrong URL, bad credentials or CVAT down). `share_root`: the folder of this machine that CVAT mounts as
        its share (or, with `cloud_storage_id`, that backs the cloud storage), for exports by reference."""
        permissions.require_login(actor)
        if not NAME_RE.match(name or ""):
            raise InvalidRequest(f"connection name {name!r}: use 1–100 letters, digits, spaces, '_', '-' or '.'")
        if auth_kind not in AUTH_KINDS:
            raise InvalidRequest(f"auth kind {auth_kind!r}: expected one of {', '.join(AUTH_KINDS)}")
        if urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc:
            raise InvalidRequest(f"CVAT URL {url!r}: expected http(s)://host[:port]")
        if auth_kind in ("login", "basic") and not username:
            raise InvalidRequest("a username is needed for a login or basic credentials")
        if not secret:
            raise InvalidRequest("a password or token is needed")
        if share_root and not actor.is_admin:  # a server path: only inside an import root open to the user
            self.require_server_path(actor, share_root, "share folder")
        share_root = _share_root(share_root, cloud_storage_id)
        url = url.rstrip("/")
        if check:
            from dsgen_core.cvat_sync.connections import open_client

            open_client(url, org, auth_kind, username, secret).close()
        try:
            with self.app.catalog.session() as s:
                c = CvatConnection(owner_id=actor.id, name=name, url=url, org=org or None, auth_kind=auth_kind,
                                   username=username, secret=seal(self.app, secret), share_root=share_root,
                                   cloud_storage_id=cloud_storage_id)
                s.add(c)
                s.flush()
                s.add(AuditEntry(user_id=actor.id, action="cvat.connection.add", target_type="cvat_connection",
                                 target_id=c.id, details={"name": name, "url": url, "auth": auth_kind,
                                                          "share_root": share_root,
                                                          "cloud_storage_id": cloud_storage_id}))
                return connection_info(c)
        except IntegrityError:
            raise InvalidRequest(f"you already have a CVAT connection called {name!r}") from None

    def list_cvat_connections(self, actor: Actor) -> list[ConnectionInfo]:
        permissions.require_login(actor)
        with self.app.catalog.session() as s:
            rows = s.scalars(select(CvatConnection).where(CvatConnection.owner_id == actor.id)
                             .order_by(CvatConnection.id))
            return [connection_info(c) for c in rows]

    def delete_cvat_connection(self, actor: Actor, connection: int | str) -> None:
        with self.app.catalog.session() as s:
            c = self._connection(s, actor, connection)
            s.execute(CvatExport.__table__.update().where(CvatExport.connection_id == c.id).values(connection_id=None))
            s.delete(c)
            s.add(AuditEntry(user_id=actor.id, action="cvat.connection.delete", target_type="cvat_connection",
                             target_id=c.id, details={"name": c.name}))

    def check_cvat_connection(self, actor: Actor, connection: int | str) -> str:
        """Log in with a saved connection; returns the CVAT version (or raises the client's clear error)."""
        from dsgen_core.cvat_sync.connections import client_for

        with self.app.catalog.session() as s:
            c = self._connection(s, actor, connection)
        with client_for(self.app, c) as client:
            return str(client.version)

    def _connection(self, s: Session, actor: Actor, ref: int | str) -> CvatConnection:
        """Only the owner's own connections exist for them."""
        permissions.require_login(actor)
        q = select(CvatConnection).where(CvatConnection.owner_id == actor.id)
        q = q.where(CvatConnection.id == ref) if isinstance(ref, int) else q.where(CvatConnection.name == ref)
        c = s.scalars(q).first()
        if c is None:
            raise NotFound(f"CVAT connection {ref!r} not found (add one on the CVAT page or with "
                           "`dsgen cvat connect`)")
        return c

    # ----- export ---------------------------------------------------------------------------
    def preview_cvat_export(self, actor: Actor, req: ExportRequest) -> ExportPreview:
        """What `start_cvat_export` would send, without sending anything: images, tasks, and the images with an
        EXIF orientation (the export refuses them unless `req.exif` says what to do)."""
        with self.app.catalog.session() as s:
            plan = self._plan_export(s, actor, req)
            return plan.preview

    def start_cvat_export(self, actor: Actor, req: ExportRequest) -> ExportStarted:
        """Freeze the filter snapshot (version + DSL + curation sequence → image ids), plan the tasks, queue the job."""
        with self.app.catalog.session() as s:
            plan = self._plan_export(s, actor, req)
            if plan.preview.needs_exif_choice:
                raise ExifChoiceNeeded(plan.preview.oriented, plan.preview.num_images)
            v, conn, ids, parts, names = plan.version, plan.connection, plan.ids, plan.parts, plan.names
            e = CvatExport(
                created_by=actor.id, version_id=v.id, connection_id=conn.id, server_url=conn.url,
                query=req.query or "", curation_seq=plan.seq, num_images=len(ids), project_name=req.project,
                task_name=req.task_name, max_images_per_task=req.max_images_per_task, segment_size=req.segment_size,
                image_quality=req.image_quality, preload_annotations=req.preload_annotations, status="QUEUED",
                send_references=req.send_references, exif_remedy=req.exif if plan.preview.oriented else None,
            )
            s.add(e)
            s.flush()
            start = 0
            for k, (name, part) in enumerate(zip(plan.preview.task_names, parts, strict=True)):
                s.add(CvatExportTask(export_id=e.id, part=k, name=name, image_ids=part,
                                     frame_names=names[start : start + len(part)]))
                start += len(part)
            s.add(AuditEntry(user_id=actor.id, action="cvat.export.start", target_type="version", target_id=v.id,
                             details={"export_id": e.id, "server": conn.url, "query": req.query, "seq": plan.seq,
                                      "images": len(ids), "tasks": len(parts), "project": req.project,
                                      "references": req.send_references, "exif": e.exif_remedy}))
            export_id = e.id
        job_id = queue.enqueue(self.app, cvat_jobs.EXPORT, {"export_id": export_id}, actor.id,
                               version_id=req.version_id)
        with self.app.catalog.session() as s:
            s.get(CvatExport, export_id).job_id = job_id
        return ExportStarted(export_id, job_id, len(ids), len(parts))

    def _plan_export(self, s: Session, actor: Actor, req: ExportRequest) -> _ExportPlan:
        """Check the request and rights; the image ids, frame names and tasks the export would have."""
        from dsgen_core.cvat_sync.orientation import REMEDIES
        from dsgen_core.cvat_sync.subset import frame_names, split_parts
        from dsgen_core.search import service

        for what, value, lo, hi in (("max images per task", req.max_images_per_task, 1, MAX_TASK_IMAGES),
                                    ("segment size", req.segment_size, 1, MAX_TASK_IMAGES),
                                    ("image quality", req.image_quality, 1, 100)):
            if not isinstance(value, int) or not lo <= value <= hi:
                raise InvalidRequest(f"{what} {value!r}: expected a whole number from {lo} to {hi}")
        for what, value in (("project", req.project), ("task name", req.task_name)):
            if not NAME_RE.match(value or ""):
                raise InvalidRequest(f"{what} {value!r}: use 1–100 letters, digits, spaces, '_', '-' or '.'")
        if req.exif is not None and req.exif not in REMEDIES:
            raise InvalidRequest(f"EXIF remedy {req.exif!r}: expected one of {', '.join(REMEDIES)}")
        engine = self._engine(actor, req.version_id)  # type: ignore[attr-defined] - CurationFacade; checks read
        ids = service.matching_ids(engine, req.query or "")
        if not ids:
            raise InvalidRequest(f"the filter {req.query!r} matches no image of version {req.version_id}")
        v = self._load_version(s, req.version_id, actor, "viewer")
        permissions.require_read(actor, v.group)
        conn = self._connection(s, actor, req.connection)
        if req.send_references:
            names = self._share_references(engine, conn, ids)
        else:
            files = dict(engine.fetchall("SELECT image_id, file_name FROM images"))
            names = frame_names([files[i] for i in ids])
        chosen = set(ids)
        oriented = [OrientedImage(int(i), str(f), int(o)) for i, f, o in engine.fetchall(
            "SELECT image_id, file_name, exif_orientation FROM images WHERE exif_orientation BETWEEN 2 AND 8 "
            "ORDER BY image_id") if i in chosen]
        parts = split_parts(ids, req.max_images_per_task)
        task_names = [req.task_name] if len(parts) == 1 else [f"{req.task_name}-{k + 1:03d}" for k in range(len(parts))]
        preview = ExportPreview(version_id=v.id, connection=conn.name, num_images=len(ids), num_tasks=len(parts),
                                task_names=task_names, oriented=oriented, exif=req.exif,
                                send_references=req.send_references)
        return _ExportPlan(preview, v, conn, ids, engine.seq, names, parts)

    def _share_references(self, engine: Any, conn: CvatConnection, ids: list[int]) -> list[str]:
        """Frame names of an export by reference: each image's path under the connection's share folder."""
        from dsgen_core.cvat_sync.subset import share_references

        if not conn.share_root:
            raise InvalidRequest(f"CVAT connection {conn.name!r} has no share folder: add one to the connection "
                                 "(the folder of this machine that CVAT mounts as its share) or send the images as "
                                 "bytes")
        uris = dict(engine.fetchall("SELECT image_id, uri FROM images"))
        paths = [self.app.storage.local_path(uris[i]) if uris.get(i) else None for i in ids]
        try:
            return share_references(ids, paths, conn.share_root)
        except ValueError as exc:
            raise InvalidRequest(f"cannot send references over CVAT connection {conn.name!r}: {exc}") from None

    def resume_cvat_export(self, actor: Actor, export_id: int) -> ExportStarted:
        """Run a failed or cancelled export again: created tasks are continued, never created twice.

        A QUEUED or RUNNING export whose job went silent for the stale interval (its process was killed) is
        taken over, as a worker would; while its job still shows signs of life, the error says when.
        """
        with self.app.catalog.session() as s:
            e = self._export(s, actor, export_id)
            if e.status == "DONE":
                raise InvalidRequest(f"export {export_id} is DONE: nothing to resume")
            if e.connection_id:
                self._connection(s, actor, e.connection_id)
            status, job_id = e.status, e.job_id
            n_tasks = len(list(s.scalars(select(CvatExportTask.id).where(CvatExportTask.export_id == e.id))))
            version_id, n = e.version_id, e.num_images
        if status in ("QUEUED", "RUNNING") and job_id is not None and self._take_over(export_id, job_id):
            return ExportStarted(export_id, job_id, n, n_tasks)
        with self.app.catalog.session() as s:
            e = self._export(s, actor, export_id)
            e.status, e.error = "QUEUED", None
            s.add(AuditEntry(user_id=actor.id, action="cvat.export.resume", target_type="cvat_export",
                             target_id=e.id))
        job_id = queue.enqueue(self.app, cvat_jobs.EXPORT, {"export_id": export_id}, actor.id, version_id=version_id)
        with self.app.catalog.session() as s:
            s.get(CvatExport, export_id).job_id = job_id
        return ExportStarted(export_id, job_id, n, n_tasks)

    def _take_over(self, export_id: int, job_id: int) -> bool:
        """True when the export's own job is (again) queued for whoever follows it; False when it has ended and
        a new job must resume the export; InvalidRequest while it still runs somewhere."""
        from dsgen_core.catalog.models import Job, utcnow

        with self.app.catalog.session() as s:
            job = s.get(Job, job_id)
            status, beat = (job.status, job.heartbeat_at) if job else (queue.FAILED, None)
        if status == queue.QUEUED:
            return True
        if status != queue.RUNNING:
            return False
        stale = self.app.stale_seconds
        silent = (utcnow() - beat).total_seconds() if beat else stale
        if silent < stale:
            raise InvalidRequest(
                f"export {export_id} cannot be resumed yet: its job {job_id} is still running (last sign of life "
                f"{silent:.0f} s ago). If the process running it was killed, the job counts as lost after {stale:.0f} "
                f"s without a sign of life (DSGEN_JOB_STALE_SECONDS), in about {max(1, stale - silent):.0f} s: then "
                "resume continues its tasks, and a running worker (`dsgen worker`) takes it over by itself. Follow "
                f"it with `dsgen jobs show {job_id} --follow`.")
        queue.recover_stale(self.app, stale)  # what every worker does: requeue it (or fail it, out of attempts)
        with self.app.catalog.session() as s:
            return s.get(Job, job_id).status == queue.QUEUED

    def _export(self, s: Session, actor: Actor, export_id: int) -> CvatExport:
        e = s.get(CvatExport, int(export_id))
        if e is None or not (actor.is_admin or e.created_by == actor.id):
            raise NotFound(f"CVAT export {export_id} not found")
        self._load_version(s, e.version_id, actor, "viewer")
        return e

    def get_cvat_export(self, actor: Actor, export_id: int) -> ExportInfo:
        with self.app.catalog.session() as s:
            e = self._export(s, actor, export_id)
            tasks = list(s.scalars(select(CvatExportTask).where(CvatExportTask.export_id == e.id)))
            return export_info(e, tasks)

    def list_cvat_exports(self, actor: Actor, version_id: int | None = None, limit: int = 100) -> list[ExportInfo]:
        """The actor's exports (every export for an admin), newest first."""
        permissions.require_login(actor)
        with self.app.catalog.session() as s:
            q = select(CvatExport).order_by(CvatExport.id.desc()).limit(limit)
            if not actor.is_admin:
                q = q.where(CvatExport.created_by == actor.id)
            if version_id is not None:
                q = q.where(CvatExport.version_id == version_id)
            out = []
            for e in s.scalars(q):
                tasks = list(s.scalars(select(CvatExportTask).where(CvatExportTask.export_id == e.id)))
                out.append(export_info(e, tasks))
            return out

    # ----- pull-back ------------------------------------------------------------------------
    def preview_pull(self, actor: Actor, tasks: int | str | Sequence[int | str], into: int | str,
                     connection: int | str | None = None) -> PullPreview:
        """Download the tasks' annotations and diff them against the version they were exported from."""
        from dsgen_core.cvat_sync.connections import client_for
        from dsgen_core.lake.store import read_tables

        refs = [tasks] if isinstance(tasks, (int, str)) else list(tasks)
        task_ids = sorted({task_id_of(r) for r in refs})
        if not task_ids:
            raise InvalidRequest("name at least one CVAT task")
        with self.app.catalog.session() as s:
            g = self._load_group(s, into, actor, "editor")
            permissions.require_edit(actor, g)
            conn = self._connection(s, actor, connection) if connection is not None else None
            rows = s.execute(select(CvatExportTask, CvatExport).join(CvatExport)
                             .where(CvatExportTask.task_id.in_(task_ids))).all()
            if conn is not None:
                rows = [(t, e) for t, e in rows if e.server_url == conn.url]
            found = {t.task_id: (t, e) for t, e in sorted(rows, key=lambda r: r[1].id)}
            missing = [i for i in task_ids if i not in found]
            if missing:
                raise NotFound(f"CVAT task(s) {missing} were not exported by dsgen"
                               + (f" to {conn.url}" if conn else "") + ": nothing to match them against")
            exports = {e.id: e for _, e in found.values()}
            if len(exports) > 1:
                raise InvalidRequest(f"the tasks come from different exports {sorted(exports)}: pull them one by one")
            e = next(iter(exports.values()))
            source = self._load_version(s, e.version_id, actor, "viewer")
            if source.group_id != g.id:
                raise InvalidRequest(f"task(s) {task_ids} were exported from group {source.group.name!r}, "
                                     f"not {g.name!r}")
            if conn is None:
                owned = s.get(CvatConnection, e.connection_id) if e.connection_id else None
                if owned is None or owned.owner_id != actor.id:
                    owned = s.scalars(select(CvatConnection).where(CvatConnection.owner_id == actor.id,
                                                                   CvatConnection.url == e.server_url)).first()
                if owned is None:
                    raise NotFound(f"you have no CVAT connection to {e.server_url}; add one first")
                conn = owned
            p = CvatPull(created_by=actor.id, export_id=e.id, task_ids=task_ids, group_id=g.id,
                         source_version_id=source.id, status="DOWNLOADING")
            s.add(p)
            s.flush()
            pull_id, folder = p.id, self.app.settings.lake_root / source.lake_path
            task_rows = [found[i][0] for i in task_ids]
            split, group_name = source.split, g.name
        from dsgen_core.cvat_sync import pull

        work = pull.pull_dir(self.app, pull_id)
        try:
            with client_for(self.app, conn) as client:
                pull.download(client, task_ids, work)
            diff, _plan = pull.compute(read_tables(folder), e, task_rows, work)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            with self.app.catalog.session() as s:
                s.get(CvatPull, pull_id).status = "FAILED"
            raise
        with self.app.catalog.session() as s:
            p = s.get(CvatPull, pull_id)
            p.status, p.summary = "PREVIEWED", diff.summary()
            s.add(AuditEntry(user_id=actor.id, action="cvat.pull.preview", target_type="group", target_id=p.group_id,
                             details={"pull_id": pull_id, "export_id": e.id, "task_ids": task_ids,
                                      "is_zero": diff.is_zero}))
        return PullPreview(pull_id, e.id, task_ids, e.version_id, group_name, split, diff)

    def commit_pull(self, actor: Actor, pull_id: int, *, even_if_unchanged: bool = False) -> PullStarted:
        """Reserve the next version of the source's group × split and queue the job that writes it.

        A pull whose diff is empty creates nothing (InvalidRequest) unless `even_if_unchanged`: then the new
        version equals the source (same tables, same content hash)."""
        from dsgen_core.api import _next_version

        with self.app.catalog.session() as s:
            p = s.get(CvatPull, int(pull_id))
            if p is None or not (actor.is_admin or p.created_by == actor.id):
                raise NotFound(f"pull {pull_id} not found")
            g = self._load_group(s, p.group_id, actor, "editor")
            permissions.require_edit(actor, g)
            if p.status != "PREVIEWED":
                raise InvalidRequest(f"pull {pull_id} is {p.status}; preview again to pull anew")
            if (p.summary or {}).get("is_zero") and not even_if_unchanged:
                raise InvalidRequest(f"pull {pull_id}: nothing changed in CVAT, so no version was created (pass "
                                     "even_if_unchanged=True to create an identical one anyway)")
            source = self._load_version(s, p.source_version_id, actor, "viewer")
            existing = list(s.scalars(select(DatasetVersion.version).where(
                DatasetVersion.group_id == g.id, DatasetVersion.split == source.split)))
            v = DatasetVersion(group_id=g.id, split=source.split, version=_next_version(existing), status="PENDING",
                               source_uri=f"cvat-pull:{pull_id}", created_by=actor.id)
            s.add(v)
            s.flush()
            p.status, p.new_version_id = "COMMITTING", v.id
            s.add(AuditEntry(user_id=actor.id, action="cvat.pull.start", target_type="version", target_id=v.id,
                             details={"pull_id": p.id, "export_id": p.export_id, "task_ids": p.task_ids,
                                      "source_version": source.id, "version": v.version}))
            version_id, version = v.id, v.version
        job_id = queue.enqueue(self.app, cvat_jobs.PULL, {"pull_id": int(pull_id), "version_id": version_id}, actor.id,
                               version_id=version_id)
        with self.app.catalog.session() as s:
            s.get(CvatPull, int(pull_id)).job_id = job_id
        return PullStarted(int(pull_id), job_id, version_id, version)

    def get_pull_summary(self, actor: Actor, pull_id: int) -> dict[str, Any]:
        with self.app.catalog.session() as s:
            p = s.get(CvatPull, int(pull_id))
            if p is None or not (actor.is_admin or p.created_by == actor.id):
                raise NotFound(f"pull {pull_id} not found")
            return {"status": p.status, "new_version_id": p.new_version_id, "job_id": p.job_id, **(p.summary or {})}
