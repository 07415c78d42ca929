"""EXIF orientation: CVAT applies it when it builds a task (an image stored 480 x 270 with orientation 6 becomes a
270 x 480 frame), so shapes in the stored pixels' coordinates must be turned with it, and turned back on pull.

The maps are those of Pillow's `ImageOps.exif_transpose` (a test checks them pixel for pixel), on continuous
coordinates: pixel (i, j) covers [i, i+1] x [j, j+1], so `W - x` mirrors exactly.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps
from pycocotools import mask as mask_utils

from dsgen_core.cvat_sync.shapes import Ann

__all__ = ["DESCRIPTIONS", "REMEDIES", "is_oriented", "turn", "turned_size", "upright_copy"]

ROTATE, AS_IS = "rotate", "as-is"
REMEDIES = (ROTATE, AS_IS)
DESCRIPTIONS = {
    2: "mirrored", 3: "upside down", 4: "mirrored upside down", 5: "mirrored and turned 90° counter-clockwise",
    6: "turned 90° clockwise", 7: "mirrored and turned 90° clockwise", 8: "turned 90° counter-clockwise",
}
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_INVERSE = {2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}


def is_oriented(orientation: int | None) -> bool:
    """True when a viewer (and CVAT) shows the stored pixels otherwise than stored."""
    return orientation in _TRANSPOSE


def turned_size(orientation: int, w: int, h: int) -> tuple[int, int]:
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def _point_map(orientation: int, w: float, h: float) -> Callable[[float, float], tuple[float, float]]:
    """(x, y) in a w x h image → (x, y) in the image as the orientation shows it."""
    return {
        2: lambda x, y: (w - x, y), 3: lambda x, y: (w - x, h - y), 4: lambda x, y: (x, h - y),
        5: lambda x, y: (y, x), 6: lambda x, y: (h - y, x), 7: lambda x, y: (h - y, w - x),
        8: lambda x, y: (y, w - x),
    }[orientation]


def _turn_mask(rle: dict[str, Any], orientation: int) -> dict[str, Any]:
    h, w = (int(v) for v in rle["size"])
    coded = mask_utils.frPyObjects(rle, h, w) if isinstance(rle["counts"], list) else rle
    pixels = Image.fromarray(mask_utils.decode(coded) * 255).transpose(_TRANSPOSE[orientation])
    out = mask_utils.encode(np.asfortranarray(np.asarray(pixels) > 0, dtype=np.uint8))
    return {"counts": out["counts"].decode(), "size": [int(v) for v in out["size"]]}


def turn(a: Ann, orientation: int, w: float, h: float, *, back: bool = False) -> Ann:
    """`a` (in a w x h image) as it lies once the orientation is applied; `back=True`: from the shown image
    (w x h as CVAT shows it) back to the stored pixels. Class, attributes and area stay."""
    o = _INVERSE[orientation] if back else orientation
    if not is_oriented(o):
        return a
    move = _point_map(o, w, h)
    bbox = a.bbox
    if bbox is not None:
        xs, ys = zip(*(move(x, y) for x in (bbox[0], bbox[0] + bbox[2]) for y in (bbox[1], bbox[1] + bbox[3])),
                     strict=True)
        bbox = (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))
    polygons = None
    if a.polygons is not None:
        polygons = [[c for i in range(0, len(p) - 1, 2) for c in move(p[i], p[i + 1])] for p in a.polygons]
    rle = _turn_mask(a.rle, o) if a.rle is not None else None
    return Ann(a.category, a.kind, bbox, polygons, rle, dict(a.attributes), a.annotation_id, a.area)


def turn_row(row: dict[str, Any], orientation: int, w: float, h: float) -> dict[str, Any]:
    """An annotations-table row turned like its image (for the COCO sent to CVAT)."""
    rle = json.loads(row["rle"]) if row.get("rle") else None
    box = (row["bbox_x"], row["bbox_y"], row["bbox_w"], row["bbox_h"])
    a = turn(Ann("", "", None if any(v is None for v in box) else box, row.get("polygons"), rle),
             orientation, w, h)
    out = dict(row)
    if a.bbox is not None:
        out["bbox_x"], out["bbox_y"], out["bbox_w"], out["bbox_h"] = a.bbox
    if row.get("polygons") is not None:
        out["polygons"] = a.polygons
    if rle is not None:
        out["rle"] = json.dumps(a.rle, separators=(",", ":"))
    return out


def upright_copy(src: Path, dest: Path) -> Path:
    """The image with its orientation applied to the pixels and the tag gone, in its format (a JPEG keeps its
    quantization tables and subsampling, so re-encoding costs as little as it can)."""
    from PIL import JpegImagePlugin

    with Image.open(src) as im:
        fmt = im.format or "PNG"
        options: dict[str, Any] = {}
        if fmt in ("JPEG", "MPO"):
            fmt = "JPEG"
            options = {"qtables": im.quantization, "subsampling": JpegImagePlugin.get_sampling(im)}
        upright = ImageOps.exif_transpose(im)
        exif = upright.getexif()
        exif.pop(0x0112, None)
        buf = io.BytesIO()
        upright.save(buf, fmt, exif=exif.tobytes(), **options)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(buf.getvalue())
    return dest
