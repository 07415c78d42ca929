"""Pull-back: download a task's annotations once (preview), diff them, and commit the diff as a new version.

The preview keeps the downloaded files with the pull record, so the commit applies exactly what was shown.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select

from dsgen_core.catalog.curation_models import ImageMeta
from dsgen_core.catalog.cvat_models import CvatExport, CvatExportTask, CvatPull
from dsgen_core.catalog.models import AuditEntry, DatasetVersion, Job, LineageEdge, utcnow
from dsgen_core.cvat_sync.diff import (
    Ann,
    Plan,
    PullDiff,
    category_map,
    diff_images,
    our_annotation,
    their_annotations,
)
from dsgen_core.jobs.queue import JobContext
from dsgen_core.lake.schema import ANNOTATIONS_SCHEMA, CATEGORIES_SCHEMA
from dsgen_core.lake.tables import DatasetTables

if TYPE_CHECKING:
    from dsgen_core.app import App
    from dsgen_core.cvat import CvatClient, LabelSpec



def pull_dir(app: App, pull_id: int) -> Path:
    return app.settings.home / "cvat" / "pulls" / str(pull_id)


def download(client: CvatClient, task_ids: list[int], folder: Path) -> None:
    """Each task's COCO export, its labels (attribute defaults) and its deleted frames into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for tid in task_ids:
        labels = client.task_labels(tid)  # CvatTaskDeleted first, with a clear message
        client.export_annotations(tid, folder / f"task-{tid}.zip")
        (folder / f"labels-{tid}.json").write_text(json.dumps([_label_dict(lab) for lab in labels]))
        deleted = client.deleted_frames(tid) if client.get_task(tid).size else []  # /data/meta needs frames
        (folder / f"deleted-{tid}.json").write_text(json.dumps(deleted))


def _label_dict(lab: LabelSpec) -> dict[str, Any]:
    return {"name": lab.name, "defaults": {a.name: _default(a.input_type, a.default_value) for a in lab.attributes}}


def _default(input_type: str, value: str | None) -> Any:
    if value is None:
        return None
    if input_type == "checkbox":
        return value.lower() == "true"
    if input_type == "number":
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _deleted_frames(folder: Path, task_id: int) -> list[str]:
    """The deleted frames a preview downloaded (none recorded by previews made before they were read)."""
    path = folder / f"deleted-{task_id}.json"
    return json.loads(path.read_text()) if path.exists() else []


def compute(tables: DatasetTables, export: CvatExport, tasks: list[CvatExportTask], folder: Path
            ) -> tuple[PullDiff, Plan]:
    """The diff and the row plan of the downloaded tasks against the source version's tables."""
    from dsgen_core.cvat import read_coco
    from dsgen_core.cvat_sync.orientation import ROTATE, is_oriented, turn

    cats = tables.categories.to_pylist()
    cat_name = {c["category_id"]: c["name"] for c in cats}
    diff, plan = PullDiff(), Plan()
    ims = tables.images.select(["image_id", "width", "height", "exif_orientation"]).to_pylist()
    sizes = {r["image_id"]: (r["width"], r["height"]) for r in ims}
    orientation = {r["image_id"]: r["exif_orientation"] for r in ims if is_oriented(r["exif_orientation"])}
    for t in tasks:
        doc = read_coco(folder / f"task-{t.task_id}.zip")
        cvat_names = [c["name"] for c in sorted(doc.get("categories", []), key=lambda c: c["id"])]
        cat_map, renamed = category_map(cvat_names, export.labels or [], cat_name.values())
        for old, new in renamed.items():
            if old not in plan.renamed:
                plan.renamed[old] = new
                diff.classes_renamed.append((old, new))
        labels = json.loads((folder / f"labels-{t.task_id}.json").read_text())
        defaults = {cat_map.get(lab["name"], lab["name"]): lab["defaults"] for lab in labels}
        frame_to_image = dict(zip(t.frame_names, t.image_ids, strict=True))
        theirs, unmatched, names = their_annotations(doc, frame_to_image, cat_map)
        deleted = [n for n in _deleted_frames(folder, t.task_id) if n in frame_to_image]
        for name in deleted:  # CVAT still exports a deleted frame's shapes: the image goes, and they with it
            image_id = frame_to_image[name]
            theirs.pop(image_id, None)
            plan.removed_images.add(image_id)
            diff.images_deleted.append(name)
        frames = {frame_to_image[str(im["file_name"])]: (im.get("width"), im.get("height"))
                  for im in doc.get("images", []) if str(im["file_name"]) in frame_to_image}
        diff.frames_resized += sum(1 for i, size in frames.items() if size != sizes.get(i, size))  # ours stay
        if export.exif_remedy == ROTATE:
            theirs = {i: [turn(a, orientation[i], *frames[i], back=True) for a in anns] if i in orientation else anns
                      for i, anns in theirs.items()}
        diff.images_in_task += len(doc.get("images", []))
        diff.images_matched += len(theirs)
        diff.images_not_matched += unmatched
        seen = set(names.values())
        diff.images_missing += [n for n in t.frame_names if n not in seen]
        anns = tables.annotations
        gone = pa.array([frame_to_image[n] for n in deleted], pa.int64())
        diff.annotations_of_deleted += pc.sum(pc.is_in(anns.column("image_id"), value_set=gone)).as_py() or 0
        ids = pa.array(list(theirs), pa.int64())
        rows = anns.filter(pc.is_in(anns.column("image_id"), value_set=ids)).to_pylist()
        ours: dict[int, list[Ann]] = {}
        for r in rows:
            ours.setdefault(int(r["image_id"]), []).append(our_annotation(r, cat_name))
        diff_images(ours, theirs, names, defaults, diff, plan)
    known = set(cat_name.values())
    for _, a in plan.added:
        if a.category not in known and a.category not in plan.new_classes:
            plan.new_classes.append(a.category)
    for a in plan.updated.values():
        if a.category not in known and a.category not in plan.new_classes:
            plan.new_classes.append(a.category)
    diff.classes_added = list(plan.new_classes)
    return diff, plan


def _geometry(row: dict[str, Any], a: Ann) -> None:
    if a.bbox is not None:
        row["bbox_x"], row["bbox_y"], row["bbox_w"], row["bbox_h"] = a.bbox
    if a.kind == "polygon":
        row["polygons"], row["rle"] = a.polygons, None
    elif a.kind == "mask":
        row["rle"] = json.dumps(a.rle, separators=(",", ":"))
    if a.area is not None:
        row["area"] = a.area


def apply(tables: DatasetTables, plan: Plan) -> DatasetTables:
    """A new set of tables: ours with the plan's rows replaced, removed and added; untouched rows stay as they are."""
    cats = tables.categories
    if plan.renamed or plan.new_classes:
        rows = cats.to_pylist()
        for r in rows:
            r["name"] = plan.renamed.get(r["name"], r["name"])
        next_id = max((r["category_id"] for r in rows), default=0) + 1
        for k, name in enumerate(plan.new_classes):
            rows.append({"category_id": next_id + k, "name": name, "supercategory": ""})
        cats = pa.Table.from_pylist(rows, schema=CATEGORIES_SCHEMA)
    images, anns = tables.images, tables.annotations
    if plan.removed_images:  # frames deleted in CVAT: the images leave the version with their annotations
        gone = pa.array(sorted(plan.removed_images), pa.int64())
        images = images.filter(pc.invert(pc.is_in(images.column("image_id"), value_set=gone)))
        anns = anns.filter(pc.invert(pc.is_in(anns.column("image_id"), value_set=gone)))
    if not (plan.removed or plan.updated or plan.added):
        return DatasetTables(images=images, annotations=anns, categories=cats, meta=dict(tables.meta))
    rename_back = {new: old for old, new in plan.renamed.items()}
    cat_id = {rename_back.get(r["name"], r["name"]): r["category_id"] for r in cats.to_pylist()}
    ids = anns.column("annotation_id")
    drop = pa.array(sorted(plan.removed | set(plan.updated)), pa.int64())
    keep = anns.filter(pc.invert(pc.is_in(ids, value_set=drop)))
    changed = anns.filter(pc.is_in(ids, value_set=pa.array(sorted(plan.updated), pa.int64()))).to_pylist()
    for r in changed:
        a = plan.updated[r["annotation_id"]]
        r["category_id"] = cat_id[a.category]
        if r["annotation_id"] in plan.moved:
            _geometry(r, a)
        r["attributes"] = json.dumps(a.attributes, separators=(",", ":"))
    next_id = (pc.max(ids).as_py() or 0) + 1
    for k, (image_id, a) in enumerate(plan.added):
        changed.append({
            "annotation_id": next_id + k, "image_id": image_id, "category_id": cat_id[a.category],
            "annotation_type": "BBOX" if a.kind == "box" else "SEGMENTATION",
            "bbox_x": a.bbox[0] if a.bbox else None, "bbox_y": a.bbox[1] if a.bbox else None,
            "bbox_w": a.bbox[2] if a.bbox else None, "bbox_h": a.bbox[3] if a.bbox else None,
            "area": a.area, "iscrowd": a.kind == "mask", "polygons": a.polygons if a.kind == "polygon" else [],
            "rle": json.dumps(a.rle, separators=(",", ":")) if a.kind == "mask" else None,
            "attributes": json.dumps(a.attributes, separators=(",", ":")), "is_machine": False, "source": "cvat",
        })
    new = pa.Table.from_pylist(changed, schema=ANNOTATIONS_SCHEMA).cast(keep.schema)
    anns = pa.concat_tables([keep, new]).sort_by("annotation_id")
    counts = anns.group_by("image_id").aggregate([("annotation_id", "count")])
    count_of = dict(zip(counts.column("image_id").to_pylist(), counts.column("annotation_id_count").to_pylist(),
                        strict=True))
    n = pa.array([count_of.get(i, 0) for i in images.column("image_id").to_pylist()], pa.int32())
    images = images.set_column(images.schema.get_field_index("num_annotations"), "num_annotations", n)
    return DatasetTables(images=images, annotations=anns, categories=cats, meta=dict(tables.meta))


def _copy_curation(s: Any, source_id: int, target_id: int, user_id: int | None, removed: set[int]) -> int:
    """Tags and metadata of the source version's images carry over (image ids are kept), but for `removed`."""
    from dsgen_core.curation import store
    from dsgen_core.curation.store import TagChange
    from dsgen_core.curation.values import Typed

    seq = store.bump(s, target_id)
    tags = store.tag_state(s, source_id)  # the target is new: every present tag is a change
    if removed:
        gone = np.array(sorted(removed), np.int64)
        tags = {tag: ids[~np.isin(ids, gone)] for tag, ids in tags.items()}
    meta = {(r.image_id, r.key): Typed(r.value_type, r.value_str, r.value_num, r.value_bool) for r in s.scalars(
        select(ImageMeta).where(ImageMeta.version_id == source_id, ImageMeta.deleted.is_(False)))
        if r.image_id not in removed}
    for tag, ids in tags.items():
        if not len(ids):
            continue
        store.write_tag_op(s, target_id, seq, user_id, TagChange(tag, True, ids))
    if meta:
        store.write_meta(s, target_id, seq, user_id, meta)
    return sum(len(ids) for ids in tags.values()) + len(meta)


def run_pull(app: App, ctx: JobContext) -> dict[str, Any]:
    from dsgen_core.importing.job import lake_folder
    from dsgen_core.lake.store import publish, read_tables

    pull_id, version_id = int(ctx.params["pull_id"]), int(ctx.params["version_id"])
    with app.catalog.session() as s:
        v = s.get(DatasetVersion, version_id)
        if v.status == "READY":
            return {"version_id": version_id, "content_hash": v.content_hash}
        v.status, v.error = "PROCESSING", None
        p = s.get(CvatPull, pull_id)
        export = s.get(CvatExport, p.export_id)
        tasks = list(s.scalars(select(CvatExportTask).where(CvatExportTask.export_id == export.id,
                                                            CvatExportTask.task_id.in_(p.task_ids))))
        source = s.get(DatasetVersion, p.source_version_id)
        src_folder, group_id, source_id = app.settings.lake_root / source.lake_path, v.group_id, source.id
    rel, final = lake_folder(app, group_id, version_id)
    staging = app.settings.lake_root / f".staging-v{version_id}"
    for folder in (staging, final):
        shutil.rmtree(folder, ignore_errors=True)
    ctx.stage("reading annotations")
    tables = read_tables(src_folder)
    diff, plan = compute(tables, export, tasks, pull_dir(app, pull_id))
    ctx.stage("writing lake")
    ctx.check_cancel()
    new, digest = publish(apply(tables, plan), staging, final)
    ctx.stage("committing")
    with app.catalog.session() as s:
        v = s.get(DatasetVersion, version_id)
        v.status, v.ready_at, v.lake_path, v.content_hash = "READY", utcnow(), rel, digest
        v.num_images, v.num_annotations = new.images.num_rows, new.annotations.num_rows
        v.num_categories = new.categories.num_rows
        v.validation_report = {"findings": [], "stats": {"cvat_pull": pull_id}}
        summary = diff.summary(max_changes=0)
        s.add(LineageEdge(parent_version_id=source_id, child_version_id=version_id, kind="cvat_pull",
                          config={"export_id": export.id, "pull_id": pull_id, "task_ids": [t.task_id for t in tasks],
                                  "server": export.server_url, "query": export.query,
                                  "curation_seq": export.curation_seq, "diff": summary}))
        carried = _copy_curation(s, source_id, version_id, v.created_by, plan.removed_images)
        pull = s.get(CvatPull, pull_id)
        pull.status, pull.new_version_id = "COMMITTED", version_id
        s.add(AuditEntry(user_id=v.created_by, action="cvat.pull.commit", target_type="version", target_id=version_id,
                         details={"pull_id": pull_id, "export_id": export.id, "source_version": source_id,
                                  "added": diff.added, "removed": diff.removed, "moved": diff.moved,
                                  "relabeled": diff.relabeled, "attributes_changed": diff.attributes_changed}))
    return {"version_id": version_id, "content_hash": digest, "curation_rows": carried}


def fail_pull(app: App, job: Job, message: str) -> None:
    """The half-written version becomes ERROR and its folders go; the preview stays for another commit."""
    from dsgen_core.importing.job import lake_folder

    version_id, pull_id = int(job.params["version_id"]), int(job.params["pull_id"])
    with app.catalog.session() as s:
        v = s.get(DatasetVersion, version_id)
        if v is None or v.status == "READY":
            return
        v.status, v.error = "ERROR", message
        group_id = v.group_id
        p = s.get(CvatPull, pull_id)
        p.status = "PREVIEWED"
        s.add(AuditEntry(user_id=v.created_by, action="cvat.pull.failed", target_type="version",
                         target_id=version_id, details={"error": message[:500], "pull_id": pull_id}))
    _, final = lake_folder(app, group_id, version_id)
    for folder in (app.settings.lake_root / f".staging-v{version_id}", final):
        shutil.rmtree(folder, ignore_errors=True)

