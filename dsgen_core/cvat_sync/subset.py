"""The exported subset: its tables, a compact summary (for labels and checks) and one COCO file per CVAT task."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from dsgen_core.cvat import flat_names
from dsgen_core.cvat.labels import BUILTIN_ATTRIBUTES
from dsgen_core.cvat_sync.outgoing import Turned, json_text_attributes, turn_images, write_cvat_coco
from dsgen_core.lake.tables import DatasetTables


def split_parts(image_ids: Sequence[int], max_per_task: int) -> list[list[int]]:
    """Consecutive chunks of at most `max_per_task` images: one CVAT task each."""
    ids = list(image_ids)
    return [ids[i : i + max_per_task] for i in range(0, len(ids), max_per_task)] or [[]]


def frame_names(file_names: Sequence[str]) -> list[str]:
    """Flat, unique CVAT frame names (CVAT keeps only base names); the export record keeps the mapping."""
    return flat_names(list(file_names))


def share_references(image_ids: Sequence[int], paths: Sequence[Path | None], share_root: str) -> list[str]:
    """The images' paths relative to the folder CVAT sees as its share: they become `server_files` and the
    frame names (CVAT names such frames by that relative path). ValueError naming the first images that are not
    files under the share, or that are one file twice (CVAT would make one frame of both)."""
    root = Path(share_root).resolve()
    out: list[str] = []
    outside: list[str] = []
    first: dict[str, int] = {}
    for image_id, path in zip(image_ids, paths, strict=True):
        if path is None:
            outside.append(f"image {image_id} (no local file)")
            continue
        try:
            rel = path.resolve().relative_to(root).as_posix()
        except ValueError:
            outside.append(f"image {image_id} ({path})")
            continue
        if rel in first:
            raise ValueError(f"images {first[rel]} and {image_id} are the same file {rel!r} under the share: "
                             "CVAT would make one frame of both; send the images as bytes instead")
        first[rel] = image_id
        out.append(rel)
    if outside:
        more = f" and {len(outside) - 5} more" if len(outside) > 5 else ""
        raise ValueError(f"{len(outside)} image(s) are not stored under the share folder {root}: "
                         f"{', '.join(outside[:5])}{more}; send them as bytes instead")
    return out


def subset_tables(tables: DatasetTables, image_ids: Sequence[int]) -> DatasetTables:
    """The images of `image_ids` and their annotations; every category is kept (they become the labels)."""
    ids = pa.array(list(image_ids), pa.int64())
    chosen = pc.is_in(tables.images.column("image_id"), value_set=ids)
    if pc.all(chosen).as_py() is not False:  # the whole version: nothing to copy
        return DatasetTables(images=tables.images, annotations=tables.annotations, categories=tables.categories,
                             meta=dict(tables.meta))
    images = tables.images.filter(chosen)
    anns = tables.annotations.filter(pc.is_in(tables.annotations.column("image_id"), value_set=ids))
    return DatasetTables(images=images, annotations=anns, categories=tables.categories, meta=dict(tables.meta))


def part_tables(sub: DatasetTables, image_ids: Sequence[int], names: Sequence[str], turned: Turned | None = None
                ) -> DatasetTables:
    """The COCO of one task as lake tables: its images renamed to their frame names, their annotations (object
    and list attributes as JSON text), all categories. Arrow only (Python touches only rows with such
    attributes and turned images), so the writer streams it straight to a file. `turned`: images with an
    EXIF orientation sent upright ("rotate")."""
    ids = pa.array(list(image_ids), pa.int64())
    images = sub.images.filter(pc.is_in(sub.images.column("image_id"), value_set=ids))
    frames = pc.take(pa.array(list(names), pa.string()), pc.index_in(images.column("image_id"), value_set=ids))
    images = images.set_column(images.schema.get_field_index("file_name"), "file_name", frames)
    anns = json_text_attributes(sub.annotations.filter(pc.is_in(sub.annotations.column("image_id"), value_set=ids)))
    if turned:
        images, anns = turn_images(images, anns, turned)
    meta = {"licenses": sub.meta.get("licenses", []), "info": sub.meta.get("info", {})}
    return DatasetTables(images=images, annotations=anns, categories=sub.categories, meta=meta)


def write_part(sub: DatasetTables, image_ids: Sequence[int], names: Sequence[str], dest: Path,
               turned: Turned | None = None) -> Path:
    """Write one task's COCO 1.0 file for CVAT; runs in a thread during the image upload."""
    return write_cvat_coco(part_tables(sub, image_ids, names, turned), dest)


_SEGMENTATION_OF_SHAPE: dict[str, Any] = {"mask": {}, "polygon": [[0.0, 0.0]], "box": []}


def coco_summary(sub: DatasetTables) -> dict[str, Any]:
    """A tiny COCO document with one annotation per distinct (category, shape kind, custom attribute value).

    `labels_from_coco` and `coco_problems` give the same answers on it as on the full document, which
    is therefore never built as Python objects: Arrow groups the annotations by (category, shape, attributes
    text) and only those distinct groups are parsed.
    """
    a = sub.annotations
    polygons = pc.fill_null(pc.greater(pc.list_value_length(a.column("polygons")), 0), False)
    shape = pc.if_else(pc.is_valid(a.column("rle")), "mask", pc.if_else(polygons, "polygon", "box"))
    groups = pa.table({"category_id": a.column("category_id"), "shape": shape, "attributes": a.column("attributes")}
                      ).group_by(["category_id", "shape", "attributes"], use_threads=False).aggregate([])
    rows: set[tuple[Any, str, str | None, bytes | None]] = set()
    for cat, kind, attrs in zip(*(groups.column(c).to_pylist() for c in ("category_id", "shape", "attributes")),
                                strict=True):
        rows.add((cat, kind, None, None))
        for key, value in (orjson.loads(attrs) if attrs else {}).items():
            if key not in BUILTIN_ATTRIBUTES:
                rows.add((cat, kind, key, orjson.dumps(value)))
    cats = sub.categories.sort_by("category_id")
    categories = [{"id": i, "name": n} for i, n in zip(cats.column("category_id").to_pylist(),
                                                       cats.column("name").to_pylist(), strict=True)]
    anns = [{"category_id": cat, "segmentation": _SEGMENTATION_OF_SHAPE[kind],
             "attributes": {key: orjson.loads(value)} if key is not None else {}}
            for cat, kind, key, value in sorted(rows, key=lambda r: (r[0] is None, r[0] or 0, r[1], r[2] or "",
                                                                     r[3] or b""))]
    return {"categories": categories, "annotations": anns}


def image_paths(storage: Any, tables: DatasetTables, image_ids: Sequence[int]) -> list[Path]:
    """Local files of the images in the given order; a clear error when bytes are not on local storage."""
    uri_of = dict(zip(tables.images.column("image_id").to_pylist(), tables.images.column("uri").to_pylist(),
                      strict=True))
    out = []
    for i in image_ids:
        uri = uri_of.get(i)
        path = storage.local_path(uri) if uri else None
        if path is None:
            raise ValueError(f"image {i} has no local file (imported without images, or on remote storage)")
        out.append(path)
    return out
