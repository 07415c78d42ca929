"""CVAT mask RLE ↔ COCO RLE, pixel for pixel.

CVAT's `rle` counts runs row by row over the mask's tight box (right and bottom edges inclusive),
starting with a background run; COCO's runs go column by column over the whole image.
"""

from __future__ import annotations

import numpy as np
import orjson
from pycocotools import mask as mask_utils

__all__ = ["coco_rle_to_cvat", "cvat_rle_to_coco", "decode_coco_rle"]


def _runs_to_flat(counts: list[int], size: int) -> np.ndarray:
    flat = np.zeros(size, dtype=np.uint8)
    pos, value = 0, 0
    for c in counts:
        if value:
            flat[pos : pos + c] = 1
        pos += c
        value ^= 1
    return flat


def _flat_to_runs(flat: np.ndarray) -> list[int]:
    change = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    return ([0] + runs) if flat.size and flat[0] else runs


def cvat_rle_to_coco(counts: list[int], left: int, top: int, width: int, height: int, img_w: int, img_h: int) -> str:
    """COCO RLE JSON ({"size": [h, w], "counts": compressed string}) of a CVAT mask."""
    box = _runs_to_flat(counts, width * height).reshape(height, width)
    full = np.zeros((img_h, img_w), dtype=np.uint8)
    h = max(0, min(height, img_h - top))
    w = max(0, min(width, img_w - left))
    full[top : top + h, left : left + w] = box[:h, :w]
    rle = mask_utils.encode(np.asfortranarray(full))
    return orjson.dumps({"size": [img_h, img_w], "counts": rle["counts"].decode("ascii")}).decode()


def decode_coco_rle(rle_json: str) -> np.ndarray:
    rle = orjson.loads(rle_json)
    if isinstance(rle.get("counts"), list):
        rle = mask_utils.frPyObjects(rle, *rle["size"])
    elif isinstance(rle.get("counts"), str):
        rle = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    return mask_utils.decode(rle)


def coco_rle_to_cvat(rle_json: str) -> tuple[list[int], int, int, int, int] | None:
    """(counts, left, top, width, height) of a COCO RLE mask, or None for an empty mask."""
    m = decode_coco_rle(rle_json)
    ys, xs = np.nonzero(m)
    if not ys.size:
        return None
    top, bottom, left, right = int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())
    crop = m[top : bottom + 1, left : right + 1]
    return _flat_to_runs(crop.reshape(-1)), left, top, right - left + 1, bottom - top + 1
