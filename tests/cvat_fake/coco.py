"""COCO 1.0 ↔ CVAT shapes for the fake, following what CVAT (via Datumaro) does on import and export."""

from __future__ import annotations

import io
import json
import posixpath
import zipfile
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from .model import Frame, Label, Shape

COORDINATE_ROUNDING_DIGITS = 2  # CVAT (its Datumaro) rounds shape points on import and bboxes on export
LICENSES = [{"name": "", "id": 0, "url": ""}]
INFO = {"contributor": "", "date_created": "", "description": "", "url": "", "version": "", "year": ""}


class ImportFailed(Exception):
    """Fails the import request with this message (as CVAT's CvatImportError does)."""


def read_document(raw: bytes) -> dict[str, Any]:
    if raw[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            names = sorted(n for n in zf.namelist() if n.endswith(".json"))
            if not names:
                raise ImportFailed("Dataset must contain a file: annotations/instances_*.json")
            raw = zf.read(names[0])
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise ImportFailed(f"Invalid COCO JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("annotations", []), list):
        raise ImportFailed("Invalid COCO JSON: not an object with annotations")
    return doc


def _uncompressed(rle: dict[str, Any]) -> dict[str, Any]:
    """COCO RLE with a list of counts (what CVAT exports for crowd masks), from any RLE."""
    h, w = (int(v) for v in rle["size"])
    if isinstance(rle["counts"], list):
        return {"counts": [int(c) for c in rle["counts"]], "size": [h, w]}
    m = mask_utils.decode({"counts": rle["counts"].encode() if isinstance(rle["counts"], str) else rle["counts"],
                           "size": [h, w]})
    flat = np.asfortranarray(m).reshape(-1, order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        counts = [0, *counts]
    return {"counts": counts, "size": [h, w]}


def _rounded(values: list[float]) -> list[float]:
    return [round(float(v), COORDINATE_ROUNDING_DIGITS) for v in values]


def _match_frames(frames: list[Frame]) -> dict[str, int]:
    """Keys under which an item id can match a frame: full name, base name, and both without extension."""
    keys: dict[str, int] = {}
    for i, f in enumerate(frames):
        for k in (f.name, posixpath.basename(f.name), posixpath.splitext(f.name)[0],
                  posixpath.splitext(posixpath.basename(f.name))[0]):
            keys.setdefault(k, i)
    return keys


def import_coco(doc: dict[str, Any], frames: list[Frame], labels: list[Label], next_id) -> list[Shape]:
    """Shapes from a COCO document; unknown labels/images or bad attribute values fail the import."""
    by_name = {lab.name: lab for lab in labels}
    cats = {}
    for c in doc.get("categories", []):
        if c["name"] not in by_name:
            raise ImportFailed(f"Label '{c['name']}' is not registered for this task")
        cats[c["id"]] = by_name[c["name"]]
    keys = _match_frames(frames)
    image_frame = {}
    for img in doc.get("images", []):
        name = str(img.get("file_name", ""))
        frame = keys.get(name, keys.get(posixpath.splitext(name)[0]))
        if frame is None:
            raise ImportFailed(f"Could not match item id: '{posixpath.splitext(name)[0]}' with any task frame")
        image_frame[img["id"]] = frame
    shapes: list[Shape] = []
    for ann in doc.get("annotations", []):
        label = cats.get(ann.get("category_id"))
        if label is None:
            raise ImportFailed(f"Annotation {ann.get('id')}: unknown category id {ann.get('category_id')}")
        frame = image_frame.get(ann.get("image_id"))
        if frame is None:
            raise ImportFailed(f"Annotation {ann.get('id')}: unknown image id {ann.get('image_id')}")
        attrs = ann.get("attributes") or {}
        values: dict[int, str] = {}
        for spec in label.attributes:
            try:
                values[spec.id] = spec.from_coco(attrs[spec.name]) if spec.name in attrs else spec.default_value
            except ValueError as exc:
                raise ImportFailed(f"Annotation {ann.get('id')}: {exc}") from None
        common = dict(label_id=label.id, frame=frame, occluded=bool(attrs.get("occluded", False)),
                      rotation=float(attrs.get("rotation", 0.0)), attributes=values)
        seg = ann.get("segmentation")
        if isinstance(seg, dict):
            kind, extra = "mask", {"rle": _uncompressed(seg)}
        elif seg:
            kind, extra = "polygon", {"polygons": [_rounded(part) for part in seg]}
        else:
            x, y, w, h = (float(v) for v in ann["bbox"])
            kind, extra = "rectangle", {"points": _rounded([x, y, x + w, y + h])}
        if label.type not in ("any", kind):
            raise ImportFailed(f"Label '{label.name}' does not allow {kind} shapes")
        shapes.append(Shape(id=next_id("shape"), type=kind, **common, **extra))
    return shapes


def _raster_area(polygons: list[list[float]], frame: Frame) -> float:
    """The pixel count of the rasterised shape (what CVAT's COCO export calls `area`), at the frame's size."""
    return float(mask_utils.area(mask_utils.merge(mask_utils.frPyObjects(polygons, frame.height, frame.width))))


def _geometry(s: Shape, frame: Frame) -> tuple[list[float], float, Any]:
    """(bbox, area, segmentation) of a shape as the COCO export writes them: bbox rounded to 2 decimals, area
    the raster pixel count (a 56.03 x 33.72 box has area 1848.0, not 1889.3)."""
    if s.type == "rectangle":
        x1, y1, x2, y2 = s.points
        return _rounded([x1, y1, x2 - x1, y2 - y1]), _raster_area([[x1, y1, x2, y1, x2, y2, x1, y2]], frame), []
    if s.type == "polygon":
        xs = [v for p in s.polygons for v in p[0::2]]
        ys = [v for p in s.polygons for v in p[1::2]]
        x, y = min(xs), min(ys)
        return (_rounded([x, y, max(xs) - x, max(ys) - y]), _raster_area(s.polygons, frame),
                [list(p) for p in s.polygons])
    rle = mask_utils.frPyObjects(s.rle, *s.rle["size"])
    return [float(v) for v in mask_utils.toBbox(rle)], float(mask_utils.area(rle)), copy_rle(s.rle)


def copy_rle(rle: dict[str, Any]) -> dict[str, Any]:
    return {"counts": list(rle["counts"]), "size": list(rle["size"])}


def export_coco(frames: list[Frame], shapes: list[Shape], labels: list[Label]) -> dict[str, Any]:
    """The task as CVAT's "COCO 1.0" export: ids renumbered from 1, image id = frame + 1.

    CVAT labels have no supercategory, so it is exported as "" whatever was imported.
    """
    cat_of = {lab.id: i + 1 for i, lab in enumerate(labels)}
    label_of = {lab.id: lab for lab in labels}
    anns = []
    for s in sorted(shapes, key=lambda s: (s.frame, s.id)):
        label = label_of.get(s.label_id)
        if label is None:
            continue
        bbox, area, seg = _geometry(s, frames[s.frame])
        attrs: dict[str, Any] = {a.name: a.to_coco(s.attributes.get(a.id, a.default_value)) for a in label.attributes}
        attrs["occluded"] = s.occluded
        attrs["rotation"] = s.rotation
        anns.append({"id": len(anns) + 1, "image_id": s.frame + 1, "category_id": cat_of[s.label_id],
                     "segmentation": seg, "area": area, "bbox": bbox, "iscrowd": 1 if s.type == "mask" else 0,
                     "attributes": attrs})
    return {
        "licenses": LICENSES,
        "info": INFO,
        "categories": [{"id": cat_of[lab.id], "name": lab.name, "supercategory": ""} for lab in labels],
        "images": [{"id": i + 1, "width": f.width, "height": f.height, "file_name": f.name, "license": 0,
                    "flickr_url": "", "coco_url": "", "date_captured": 0} for i, f in enumerate(frames)],
        "annotations": anns,
    }


def export_zip(doc: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("annotations/instances_default.json", json.dumps(doc))
    return out.getvalue()
