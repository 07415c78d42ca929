"""The exported subset as COCO documents: the whole subset (for labels) and one document per CVAT task."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from dsgen_core.cvat import flat_names
from dsgen_core.lake.tables import DatasetTables


def split_parts(image_ids: Sequence[int], max_per_task: int) -> list[list[int]]:
    """Consecutive chunks of at most `max_per_task` images: one CVAT task each."""
    ids = list(image_ids)
    return [ids[i : i + max_per_task] for i in range(0, len(ids), max_per_task)] or [[]]


def frame_names(file_names: Sequence[str]) -> list[str]:
    """Flat, unique CVAT frame names (CVAT keeps only base names); the export record keeps the mapping."""
    return flat_names(list(file_names))


def subset_tables(tables: DatasetTables, image_ids: Sequence[int]) -> DatasetTables:
    """The images of `image_ids` and their annotations; every category is kept (they become the labels)."""
    ids = pa.array(list(image_ids), pa.int64())
    images = tables.images.filter(pc.is_in(tables.images.column("image_id"), value_set=ids))
    anns = tables.annotations.filter(pc.is_in(tables.annotations.column("image_id"), value_set=ids))
    return DatasetTables(images=images, annotations=anns, categories=tables.categories, meta=dict(tables.meta))


def part_document(doc: dict[str, Any], image_ids: Sequence[int], names: Sequence[str]) -> dict[str, Any]:
    """The COCO of one task: its images renamed to their frame names, their annotations, all categories."""
    name_of = dict(zip(image_ids, names, strict=True))
    images = [dict(im, file_name=name_of[im["id"]]) for im in doc["images"] if im["id"] in name_of]
    anns = [a for a in doc["annotations"] if a["image_id"] in name_of]
    return {"licenses": doc.get("licenses", []), "info": doc.get("info", {}), "categories": doc["categories"],
            "images": images, "annotations": anns}


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
