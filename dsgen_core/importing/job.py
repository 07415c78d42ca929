"""The import job: source → parse → check → store images → lake → READY, or ERROR with nothing left behind.

Idempotent: a retried attempt starts from a clean staging folder; image blobs already stored
are content-addressed and simply found again.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dsgen_core.catalog.models import AuditEntry, DatasetVersion, Job, utcnow
from dsgen_core.importing import uploads
from dsgen_core.insights.job import PRECOMPUTE
from dsgen_core.jobs.queue import JobContext, JobKind, enqueue, register
from dsgen_core.validation import ValidationFailed, ValidationReport

if TYPE_CHECKING:
    from dsgen_core.app import App

IMPORT = "import"


def lake_folder(app: App, group_id: int, version_id: int) -> tuple[str, Path]:
    rel = f"g{group_id}/v{version_id}"
    return rel, app.settings.lake_root / rel


def _work_dirs(app: App, version_id: int) -> tuple[Path, Path]:
    return app.settings.tmp_root / f"import-v{version_id}", app.settings.lake_root / f".staging-v{version_id}"


def run_import(app: App, ctx: JobContext) -> dict[str, Any]:
    # Imported here so that registering the job kind (every process does) stays cheap.
    from dsgen_core.import_roots import policy_for
    from dsgen_core.importing.media_checks import store_media, with_media_columns
    from dsgen_core.importing.pipeline import SourceSpec, run_checks
    from dsgen_core.lake.store import publish

    p = ctx.params
    version_id = int(p["version_id"])
    with app.catalog.session() as s:
        v = s.get(DatasetVersion, version_id)
        if v.status == "READY":  # finished by an earlier attempt whose worker died before closing the job
            uploads.discard(app.settings, p["source_path"])
            return {"version_id": version_id, "content_hash": v.content_hash}
        v.status, v.error = "PROCESSING", None
        group_id, creator = v.group_id, v.created_by
    work, staging = _work_dirs(app, version_id)
    rel, final = lake_folder(app, group_id, version_id)
    for folder in (work, staging, final):
        shutil.rmtree(folder, ignore_errors=True)
    work.mkdir(parents=True)
    report = ValidationReport()
    checked = None
    try:
        # The paths are checked again here, against the roots as they are now: a link swapped since the
        # request, or a root closed since, refuses the import.
        spec = SourceSpec(p["source_path"], p.get("source_label") or p["source_path"], p.get("images_path"),
                          p.get("annotations_path"), bool(p.get("annotations_only")), bool(p.get("in_place")))
        checked = run_checks(spec, report, work, policy_for(app, creator), extract=True, stage=ctx.stage,
                             progress=ctx.progress)
        if report.has_errors or checked.tables is None:
            raise ValidationFailed(report)
        source, tables, media = checked.source, checked.tables, checked.media
        if media is not None:
            ctx.stage("storing images" if not p.get("in_place") else "registering images in place", len(media.paths))
            uris = store_media(
                app.storage,
                media,
                in_place=bool(p.get("in_place")),
                move=source.extracted,
                progress=ctx.progress,
            )
            tables.images = with_media_columns(tables.images, media, uris)
        ctx.stage("writing lake")
        tables.meta["source_path"] = str(p["source_path"])
        ctx.check_cancel()
        tables, digest = publish(tables, staging, final)
        ctx.stage("committing")
        with app.catalog.session() as s:
            v = s.get(DatasetVersion, version_id)
            v.status = "READY"
            v.ready_at = utcnow()
            v.lake_path = rel
            v.content_hash = digest
            v.num_images = tables.images.num_rows
            v.num_annotations = tables.annotations.num_rows
            v.num_categories = tables.categories.num_rows
            v.validation_report = report.to_dict()
            s.add(
                AuditEntry(
                    user_id=v.created_by,
                    action="import.ready",
                    target_type="version",
                    target_id=version_id,
                    details={"images": v.num_images, "annotations": v.num_annotations, "warnings": len(report.warnings)},
                )
            )
        if media is not None:
            enqueue(app, THUMBNAILS, {"version_id": version_id}, creator, version_id=version_id)
        enqueue(app, PRECOMPUTE, {"version_id": version_id}, creator, version_id=version_id)
        uploads.discard(app.settings, p["source_path"])
        return {"version_id": version_id, "content_hash": digest, "warnings": len(report.warnings)}
    except ValidationFailed as exc:
        with app.catalog.session() as s:
            v = s.get(DatasetVersion, version_id)
            v.validation_report = exc.report.to_dict()
        exc.job_result = {"validation_report": exc.report.to_dict()}
        raise
    finally:
        if checked is not None and checked.source is not None:
            checked.source.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def fail_import(app: App, job: Job, message: str) -> None:
    """Leave nothing behind: the version is ERROR and its staging and lake folders are gone."""
    version_id = int(job.params["version_id"])
    work, staging = _work_dirs(app, version_id)
    with app.catalog.session() as s:
        v = s.get(DatasetVersion, version_id)
        if v is None or v.status == "READY":
            return
        v.status = "ERROR"
        v.error = message
        group_id = v.group_id
        s.add(AuditEntry(user_id=v.created_by, action="import.failed", target_type="version", target_id=version_id,
                         details={"error": message[:500]}))
    _, final = lake_folder(app, group_id, version_id)
    for folder in (work, staging, final):
        shutil.rmtree(folder, ignore_errors=True)
    uploads.discard(app.settings, job.params.get("source_path", ""))


register(JobKind(IMPORT, run_import, fail_import))

THUMBNAILS = "thumbnails"


def thumb_path(app: App, sha256: str) -> Path:
    return app.settings.thumbs_root / sha256[:2] / f"{sha256}.jpg"


def run_thumbnails(app: App, ctx: JobContext) -> dict[str, Any]:
    """Make 512 px thumbnails for a version's images, keyed by content so versions share them."""
    from dsgen_core.lake.store import read_tables
    from dsgen_core.media import make_thumbnails

    version_id = int(ctx.params["version_id"])
    with app.catalog.session() as s:
        v = s.get(DatasetVersion, version_id)
        folder = app.settings.lake_root / v.lake_path
    images = read_tables(folder, columns={"images": ["uri", "sha256"], "annotations": ["annotation_id"],
                                          "categories": ["category_id"]}).images
    items, seen = [], set()
    for uri, sha in zip(images.column("uri").to_pylist(), images.column("sha256").to_pylist(), strict=True):
        if not uri or not sha or sha in seen:
            continue
        seen.add(sha)
        src = app.storage.local_path(uri)
        if src is not None:
            items.append((src, thumb_path(app, sha)))
    ctx.stage("making thumbnails", len(items))
    made = make_thumbnails(items, progress=ctx.progress)
    return {"thumbnails": made, "images": len(items)}


register(JobKind(THUMBNAILS, run_thumbnails))

