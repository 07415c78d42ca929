"""The COCO 1.0 file sent to CVAT, and what it changes from our tables, touching only the rows concerned: CVAT
holds attribute values as text, so objects and lists go as JSON text (their attributes are declared as text);
and with the "rotate" remedy, images with an EXIF orientation get their turned size and their shapes turned.

The file carries what CVAT's COCO importer reads (ids, names, sizes, file names, segmentation, area, bbox,
iscrowd, attributes), written with orjson batch by batch: a task's file is ready in milliseconds, well within
its upload, and memory stays bounded for large tasks (the full-fidelity export is `formats.coco_writer`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from dsgen_core.cvat.labels import is_structured
from dsgen_core.cvat_sync.orientation import is_oriented, turn_row, turned_size
from dsgen_core.lake.tables import DatasetTables

__all__ = ["Turned", "json_text_attributes", "oriented_images", "turn_images", "write_cvat_coco"]

Turned = dict[int, tuple[int, int, int]]  # image id → (EXIF orientation, stored width, stored height)

# a member whose value opens an object or a list; a false hit (inside a string) is parsed and left alone
_NESTED = r':\s*[\[{]'


def _as_text(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")) if is_structured(value) else value


def json_text_attributes(anns: pa.Table) -> pa.Table:
    """The annotations with every object or list attribute value replaced by its JSON text."""
    col = anns.column("attributes")
    hits = pc.fill_null(pc.match_substring_regex(col, _NESTED), False)
    rows = np.flatnonzero(hits.to_numpy(zero_copy_only=False))
    if not len(rows):
        return anns
    values = col.to_pylist()
    for i in rows:
        attrs = json.loads(values[i])
        if isinstance(attrs, dict) and any(is_structured(v) for v in attrs.values()):
            values[i] = json.dumps({k: _as_text(v) for k, v in attrs.items()}, ensure_ascii=False,
                                   separators=(",", ":"))
    return anns.set_column(anns.schema.get_field_index("attributes"), "attributes",
                           pa.array(values, col.type))


def oriented_images(storage: Any, images: pa.Table) -> Turned:
    """The images that carry an EXIF orientation, with the size of their stored pixels (read from the file's
    header where the table has none)."""
    from PIL import Image

    out: Turned = {}
    cols = images.select(["image_id", "exif_orientation", "width", "height", "uri"]).to_pylist()
    for r in cols:
        if not is_oriented(r["exif_orientation"]):
            continue
        w, h = r["width"], r["height"]
        if not (w and h):
            path = storage.local_path(r["uri"]) if r["uri"] else None
            if path is None:
                raise ValueError(f"image {r['image_id']} has an EXIF orientation but no size and no local file")
            with Image.open(path) as im:
                w, h = im.size
        out[int(r["image_id"])] = (int(r["exif_orientation"]), int(w), int(h))
    return out


def turn_images(images: pa.Table, anns: pa.Table, turned: Turned) -> tuple[pa.Table, pa.Table]:
    """The turned images' sizes as CVAT will show them, and their annotations turned the same way."""
    ids = pa.array(sorted(turned), pa.int64())
    if not len(ids) or not pc.any(pc.is_in(images.column("image_id"), value_set=ids)).as_py():
        return images, anns
    sizes = [turned_size(*turned[i]) if i in turned else (w, h) for i, w, h in zip(
        images.column("image_id").to_pylist(), images.column("width").to_pylist(),
        images.column("height").to_pylist(), strict=True)]
    for k, name in enumerate(("width", "height")):
        col = pa.array([s[k] for s in sizes], images.schema.field(name).type)
        images = images.set_column(images.schema.get_field_index(name), name, col)
    hit = pc.is_in(anns.column("image_id"), value_set=ids)
    rows = [turn_row(r, turned[r["image_id"]][0], *turned[r["image_id"]][1:]) for r in anns.filter(hit).to_pylist()]
    moved = pa.Table.from_pylist(rows, schema=anns.schema)
    return images, pa.concat_tables([anns.filter(pc.invert(hit)), moved]).sort_by("annotation_id")


_BATCH_ROWS = 2048  # small batches: few live objects, cheap garbage collections
_ANNOTATION_COLUMNS = ("annotation_id", "image_id", "category_id", "polygons", "rle", "area", "bbox_x", "bbox_y",
                       "bbox_w", "bbox_h", "iscrowd", "attributes")


def _dropping_nulls(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if v is not None}


def _annotations(batch: pa.RecordBatch) -> bytes:
    """A batch of annotations as CVAT reads them, comma-separated (one orjson call: no per-row dumps); RLE and
    attributes are JSON text already and go in as they are. Null members are left out, as COCO writers do."""
    c = batch.to_pydict()
    seg = [orjson.Fragment(r) if r else (p or []) for r, p in zip(c["rle"], c["polygons"], strict=True)]
    attrs = [orjson.Fragment(a) if a else None for a in c["attributes"]]
    crowd = [None if v is None else int(v) for v in c["iscrowd"]]
    boxes = [None if x is None or y is None or w is None or h is None else [x, y, w, h]
             for x, y, w, h in zip(c["bbox_x"], c["bbox_y"], c["bbox_w"], c["bbox_h"], strict=True)]
    rows = [{"id": i, "image_id": im, "category_id": cat, "segmentation": sg, "area": ar, "bbox": bb, "iscrowd": cr,
             "attributes": at}
            for i, im, cat, sg, ar, bb, cr, at in zip(c["annotation_id"], c["image_id"], c["category_id"], seg,
                                                      c["area"], boxes, crowd, attrs, strict=True)]
    if any(batch.column(k).null_count for k in ("category_id", "area", "bbox_x", "bbox_y", "bbox_w", "bbox_h",
                                                "iscrowd", "attributes")):
        rows = [_dropping_nulls(r) for r in rows]
    return orjson.dumps(rows)[1:-1]


def write_cvat_coco(part: DatasetTables, dest: Path) -> Path:
    """Write one task's COCO 1.0 file for CVAT's importer (atomically)."""
    cats = [_dropping_nulls({"id": c["category_id"], "name": c["name"], "supercategory": c["supercategory"]})
            for c in part.categories.sort_by("category_id").to_pylist()]
    images = [_dropping_nulls({"id": i["image_id"], "width": i["width"], "height": i["height"],
                               "file_name": i["file_name"]})
              for i in part.images.select(["image_id", "width", "height", "file_name"]).to_pylist()]
    head = {"licenses": part.meta.get("licenses") or [], "info": part.meta.get("info") or {}, "categories": cats,
            "images": images}
    tmp = dest.with_name(dest.name + ".part")
    try:
        with open(tmp, "wb") as out:
            out.write(orjson.dumps(head)[:-1] + b',"annotations":[')
            first = True
            for batch in part.annotations.select(list(_ANNOTATION_COLUMNS)).to_batches(max_chunksize=_BATCH_ROWS):
                chunk = _annotations(batch)
                if chunk:
                    out.write(chunk if first else b"," + chunk)
                    first = False
            out.write(b"]}")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest
