"""Shapes as the pull-back compares them: equal within CVAT's 2-decimal rounding, their areas, how a move prints.

CVAT rounds shape points to 2 decimals when it imports them and bboxes when it exports them, and its COCO
`area` is the pixel count of the rasterised shape. So an unchanged shape comes back up to 0.005 px away per
coordinate (box corners, polygon points) with another area: that is "unchanged", and our values stay.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pycocotools import mask as mask_utils

ROUNDING = 0.005  # CVAT keeps 2 decimals: a coordinate moves by at most half of 0.01
TOLERANCE = ROUNDING + 1e-6  # plus float noise (10.125 - 10.12 = 0.00499999...)
MAX_DECIMALS = 6


@dataclass
class Ann:
    """One annotation reduced to what CVAT can change: class, shape, geometry, attributes."""

    category: str
    kind: str  # box | polygon | mask
    bbox: tuple[float, float, float, float] | None
    polygons: list[list[float]] | None = None
    rle: dict[str, Any] | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    annotation_id: int | None = None  # ours only
    area: float | None = None


def corners(b: Sequence[float]) -> tuple[float, float, float, float]:
    """A COCO box [x, y, w, h] as CVAT stores it: [x1, y1, x2, y2] (each corner rounded on its own)."""
    return (b[0], b[1], b[0] + b[2], b[1] + b[3])


def within_rounding(a: Sequence[float], b: Sequence[float]) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= TOLERANCE for x, y in zip(a, b, strict=True))


def _rle_key(rle: dict[str, Any]) -> bytes:
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, list):
        return mask_utils.frPyObjects({"counts": counts, "size": [h, w]}, h, w)["counts"]
    return counts.encode() if isinstance(counts, str) else bytes(counts)


def same_geometry(a: Ann, b: Ann) -> bool:
    """Equal up to CVAT's rounding: box corners and polygon points within 0.005 px, masks exactly."""
    if a.kind != b.kind:
        return False
    if a.kind == "box":
        return a.bbox is not None and b.bbox is not None and within_rounding(corners(a.bbox), corners(b.bbox))
    if a.kind == "polygon":
        pa, pb = a.polygons or [], b.polygons or []
        return len(pa) == len(pb) and all(within_rounding(x, y) for x, y in zip(pa, pb, strict=True))
    return a.rle is not None and b.rle is not None and _rle_key(a.rle) == _rle_key(b.rle)


def _merge_axis(o0: float, olen: float, t0: float, tlen: float) -> tuple[float, float]:
    """One axis of a box: each edge that moved beyond the rounding takes CVAT's value, the other stays ours."""
    start, end = abs(t0 - o0) > TOLERANCE, abs((t0 + tlen) - (o0 + olen)) > TOLERANCE
    if start and end:
        return t0, tlen
    if start:
        return t0, o0 + olen - t0
    if end:
        return o0, t0 + tlen - o0
    return o0, olen


def _merge_box(o: Sequence[float], t: Sequence[float]) -> tuple[float, float, float, float]:
    x, w = _merge_axis(o[0], o[2], t[0], t[2])
    y, h = _merge_axis(o[1], o[3], t[1], t[3])
    return (x, y, w, h)


def _merge_ring(o: list[float], t: list[float]) -> list[float]:
    out: list[float] = []
    for i in range(0, len(o) - 1, 2):
        moved = abs(t[i] - o[i]) > TOLERANCE or abs(t[i + 1] - o[i + 1]) > TOLERANCE
        out += t[i : i + 2] if moved else o[i : i + 2]
    return out


def merge_geometry(ours: Ann, theirs: Ann) -> Ann:
    """CVAT's geometry where it really moved, ours where it only differs by CVAT's rounding (per box edge, per
    polygon point); a new shape kind or point count is CVAT's entirely. Class and attributes are CVAT's."""
    geo = Ann(theirs.category, theirs.kind, theirs.bbox, theirs.polygons, theirs.rle, dict(theirs.attributes))
    if ours.kind == theirs.kind and ours.bbox and theirs.bbox:
        geo.bbox = _merge_box(ours.bbox, theirs.bbox)
    if ours.kind == theirs.kind == "polygon":
        a, b = ours.polygons or [], theirs.polygons or []
        if [len(p) for p in a] == [len(p) for p in b]:
            geo.polygons = [_merge_ring(list(p), list(q)) for p, q in zip(a, b, strict=True)]
    geo.area = area_after_edit(ours, geo, theirs.area)
    return geo


def _ring_area(p: Sequence[float]) -> float:
    xs, ys = p[0::2], p[1::2]
    return abs(sum(xs[i] * ys[i - 1] - xs[i - 1] * ys[i] for i in range(len(xs)))) / 2.0


def _ring_length(p: Sequence[float]) -> float:
    xs, ys = p[0::2], p[1::2]
    return sum(math.hypot(xs[i] - xs[i - 1], ys[i] - ys[i - 1]) for i in range(len(xs)))


def geometric_area(a: Ann) -> float | None:
    """w x h of a box, the polygon's area (parts summed), the pixel count of a mask."""
    if a.kind == "box":
        return a.bbox[2] * a.bbox[3] if a.bbox else None
    if a.kind == "polygon":
        return sum(_ring_area(p) for p in a.polygons or [])
    if a.rle is None:
        return None
    h, w = (int(v) for v in a.rle["size"])
    rle = mask_utils.frPyObjects(a.rle, h, w) if isinstance(a.rle["counts"], list) else a.rle
    return float(mask_utils.area(rle))


def _perimeter(a: Ann) -> float:
    if a.kind == "polygon":
        return sum(_ring_length(p) for p in a.polygons or [])
    return 2 * (a.bbox[2] + a.bbox[3]) if a.bbox else 0.0


def area_after_edit(ours: Ann, edited: Ann, cvat_area: float | None) -> float | None:
    """The area a really edited shape gets in OUR row's convention (geometric or CVAT's raster count).

    A shape whose geometric area changed no more than its points' rounding explains (a move) keeps our area;
    otherwise our area scales with the geometric one. Without an area of ours to scale, CVAT's.
    """
    old, new = geometric_area(ours), geometric_area(edited)
    if ours.area is None or not old or new is None:
        return cvat_area
    if abs(new - old) <= _perimeter(ours) * 1.5 * TOLERANCE + 1e-9:
        return ours.area
    return ours.area * new / old


def _fmt(values: Sequence[float], decimals: int) -> str:
    return "[" + ", ".join(f"{v:.{decimals}f}" for v in values) + "]"


def fmt_box(b: Sequence[float] | None) -> str:
    return _fmt(b, 2) if b else ""


def _decimals(old: Sequence[float], new: Sequence[float]) -> int:
    """The fewest decimals (at least CVAT's 2) that show every coordinate which moved beyond the rounding."""
    moved = [(x, y) for x, y in zip(old, new, strict=True) if abs(x - y) > TOLERANCE]
    for d in range(2, MAX_DECIMALS + 1):
        if all(f"{x:.{d}f}" != f"{y:.{d}f}" for x, y in moved):
            return d
    return MAX_DECIMALS


def describe_move(ours: Ann, theirs: Ann) -> str:
    """`[x, y, w, h] → [x, y, w, h]` with enough decimals to see what moved; for polygons and masks also how."""
    if ours.bbox and theirs.bbox:
        d = _decimals(ours.bbox, theirs.bbox)
        text = f"{_fmt(ours.bbox, d)} → {_fmt(theirs.bbox, d)}"
    else:
        text = f"{fmt_box(ours.bbox)} → {fmt_box(theirs.bbox)}"
    if ours.kind == "polygon" and theirs.kind == "polygon":
        a, b = ours.polygons or [], theirs.polygons or []
        pa = [(p[i], p[i + 1]) for p in a for i in range(0, len(p) - 1, 2)]
        pb = [(p[i], p[i + 1]) for p in b for i in range(0, len(p) - 1, 2)]
        if [len(p) for p in a] != [len(p) for p in b]:
            text += f"; {len(pa)} → {len(pb)} points"
        else:
            shifts = [math.hypot(x1 - x2, y1 - y2) for (x1, y1), (x2, y2) in zip(pa, pb, strict=True)]
            moved = [s for s in shifts if s > TOLERANCE * math.sqrt(2)]
            text += f"; {len(moved)} of {len(pa)} points moved (up to {max(moved, default=0.0):.2f} px)"
    elif ours.kind == "mask" and theirs.kind == "mask":
        text += f"; mask of {geometric_area(ours):.0f} → {geometric_area(theirs):.0f} px"
    elif ours.kind != theirs.kind:
        text += f"; {ours.kind} → {theirs.kind}"
    return text
