"""Realistic CVAT "COCO 1.0" exports for demos, tests and benchmarks.

``generate_cvat_coco`` writes what CVAT's "Export task dataset → COCO 1.0 (with images)" produces::

    out_dir/annotations/instances_default.json
    out_dir/images/<scene>/seq_0007/frame_000123.jpg   (nested=True)

Everything is deterministic for a seed: the same ``SampleSpec`` gives byte-identical JSON and JPEGs,
whatever the number of worker processes.

The annotations are built per chunk of images with numpy and written as JSON text per chunk, so the
annotations-only mode (``with_images=False``) can write a COCO-sized file (118k images, ~870k
annotations) without ever holding it in memory. JPEG rendering runs in a process pool.

The small ``write_*`` helpers at the end build good and bad image files for tests.
"""

from __future__ import annotations

import io
import math
import multiprocessing as mp
import os
import shutil
import tempfile
import zipfile
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import orjson
from PIL import Image

ANNOTATIONS_NAME = "annotations/instances_default.json"
IMAGES_DIR = "images"

# name, supercategory, box aspect (h / w), typical size (fraction of sqrt(W * H)), RGB colour for rendering
CLASSES: tuple[tuple[str, str, float, float, tuple[int, int, int]], ...] = (
    ("person", "person", 2.4, 0.11, (220, 60, 60)),
    ("car", "vehicle", 0.6, 0.13, (60, 110, 220)),
    ("bicycle", "vehicle", 0.75, 0.08, (240, 170, 40)),
    ("dog", "animal", 0.8, 0.08, (150, 90, 40)),
    ("traffic light", "outdoor", 2.2, 0.035, (40, 200, 80)),
    ("truck", "vehicle", 0.75, 0.18, (100, 100, 160)),
    ("bus", "vehicle", 0.8, 0.2, (230, 210, 50)),
    ("motorcycle", "vehicle", 0.8, 0.08, (180, 40, 160)),
    ("stop sign", "outdoor", 1.0, 0.04, (200, 20, 30)),
    ("cat", "animal", 0.9, 0.07, (120, 120, 120)),
    ("bench", "outdoor", 0.5, 0.09, (110, 70, 30)),
    ("backpack", "accessory", 1.2, 0.04, (30, 160, 160)),
    ("umbrella", "accessory", 0.7, 0.07, (90, 30, 200)),
    ("bird", "animal", 0.9, 0.025, (250, 250, 250)),
    ("fire hydrant", "outdoor", 1.5, 0.04, (250, 90, 20)),
    ("skateboard", "sports", 0.4, 0.04, (20, 20, 20)),
)
ZIPF_EXPONENT = 1.2
CAR_COLORS = ("red", "blue", "white", "black")
CAR_COLOR_P = (0.2, 0.25, 0.3, 0.25)
PERSON_POSES = ("standing", "walking", "sitting", "lying")
PERSON_POSE_P = (0.45, 0.4, 0.12, 0.03)
OCCLUDED_P = 0.18
MAX_BOXES = 30
NEGBIN_R = 1.6  # dispersion of boxes per image: small r = long tail
POLY_POINTS = (14, 29)  # vertices per polygon: integers in [14, 29) → ~21 on average
SCENES = ("city_center", "highway", "suburb", "park", "parking_lot", "crosswalk", "night_street")
SEQ_LEN = (60, 400)  # images per sequence (a nested subfolder with one camera resolution)
IMAGES_PER_CHUNK = 2048  # fixed: chunking is part of the random stream, not of the parallelism

BOX, POLY, RLE = 0, 1, 2

LICENSES = [{"name": "", "id": 0, "url": ""}]
INFO = {"contributor": "", "date_created": "", "description": "", "url": "", "version": "", "year": ""}


@dataclass
class SampleSpec:
    num_images: int = 50
    mean_boxes: float = 7.3  # 0–30 boxes per image, long-tailed
    with_images: bool = True  # False: annotations only (benchmarks at 118k images)
    seed: int = 0
    nested: bool = True  # images in nested subfolders like CVAT's images/<subdir>/...
    polygon_fraction: float = 0.35  # share of annotations with polygon segmentation
    rle_fraction: float = 0.01  # share of crowd regions as RLE (iscrowd=1)
    resolutions: tuple = ((640, 480), (1280, 720), (1920, 1080), (800, 600))
    jpeg_quality: int = 85
    workers: int = 0  # 0 = os.cpu_count() processes for JPEG encoding


def categories() -> list[dict[str, Any]]:
    """The COCO ``categories`` list of the sample data (ids from 1)."""
    return [{"id": i + 1, "name": c[0], "supercategory": c[1]} for i, c in enumerate(CLASSES)]


# --------------------------------------------------------------------------------------------------
# per-image plan (small arrays for all images, made up front)


@dataclass
class _ImagePlan:
    width: np.ndarray  # int32 per image
    height: np.ndarray
    nboxes: np.ndarray  # int32 per image
    file_names: list[str]


def _negbin_mean_for_clipped(target: float, r: float, cap: int) -> float:
    """The negative-binomial mean m such that E[min(X, cap)] == target (clipping loses a little)."""

    def clipped_mean(m: float) -> float:
        p = r / (r + m)
        pk = p**r  # P(X = 0)
        total, below = 0.0, 0.0
        for k in range(cap):
            total += k * pk
            below += pk
            pk *= (k + r) / (k + 1) * (1 - p)
        return total + cap * (1.0 - below)

    lo, hi = target, target * 4 + 1
    for _ in range(60):
        mid = (lo + hi) / 2
        if clipped_mean(mid) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _plan_images(spec: SampleSpec) -> _ImagePlan:
    n = int(spec.num_images)
    rng = np.random.default_rng([spec.seed, 0])
    res = np.asarray(spec.resolutions, dtype=np.int32).reshape(-1, 2)
    # sequences: consecutive images from one camera (one resolution, one subfolder)
    lengths = rng.integers(SEQ_LEN[0], SEQ_LEN[1], size=n // SEQ_LEN[0] + 1)
    seq_of_image = np.repeat(np.arange(len(lengths)), lengths)[:n]
    seq_res = rng.integers(0, len(res), size=len(lengths))
    width = res[seq_res[seq_of_image], 0].copy()
    height = res[seq_res[seq_of_image], 1].copy()

    if spec.mean_boxes <= 0:
        nboxes = np.zeros(n, dtype=np.int32)
    elif spec.mean_boxes >= MAX_BOXES:
        nboxes = np.full(n, MAX_BOXES, dtype=np.int32)
    else:
        m = _negbin_mean_for_clipped(float(spec.mean_boxes), NEGBIN_R, MAX_BOXES)
        nboxes = np.minimum(rng.negative_binomial(NEGBIN_R, NEGBIN_R / (NEGBIN_R + m), size=n), MAX_BOXES)
        nboxes = nboxes.astype(np.int32)

    if spec.nested:
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        frame = np.arange(n) - starts[seq_of_image]
        names = [
            f"{SCENES[s % len(SCENES)]}/seq_{s:04d}/frame_{f:06d}.jpg"
            for s, f in zip(seq_of_image.tolist(), frame.tolist(), strict=True)
        ]
    else:
        names = [f"img_{i + 1:06d}.jpg" for i in range(n)]
    return _ImagePlan(width=width, height=height, nboxes=nboxes, file_names=names)


# --------------------------------------------------------------------------------------------------
# annotations of one chunk of images


@dataclass
class _Chunk:
    first_image: int  # 0-based index of the chunk's first image
    image_idx: np.ndarray  # chunk-local image index per annotation
    cat: np.ndarray  # 0-based class per annotation
    kind: np.ndarray  # BOX / POLY / RLE
    bbox: np.ndarray  # (A, 4) float64, 2 decimals
    area: np.ndarray  # (A,) float64
    occluded: np.ndarray  # bool
    custom: np.ndarray  # int8: index into CAR_COLORS / PERSON_POSES, -1 when the class has none
    polys: list  # per annotation: flat float list of the polygon (POLY) or None
    rles: list  # per annotation: (counts list, [h, w]) for RLE or None


def _floor2(a: np.ndarray) -> np.ndarray:
    return np.floor(a * 100.0) / 100.0


def _rle_blob(
    rng: np.random.Generator, x: float, y: float, bw: float, bh: float, img_w: int, img_h: int
) -> tuple[list[int], float, list[float]]:
    """An irregular blob inside the box as CVAT's uncompressed RLE (column-major runs).

    Returns (counts, area, bbox) with bbox/area exactly what pycocotools computes for the mask.
    """
    x0 = int(math.floor(x))
    y0 = int(math.floor(y))
    cols = max(2, min(int(math.ceil(bw)), img_w - x0))
    rows = max(2, min(int(math.ceil(bh)), img_h - y0))
    c = (np.arange(cols) + 0.5) / cols * 2.0 - 1.0  # -1..1 across the box
    wobble = 0.8 + 0.2 * np.sin(np.arange(cols) * rng.uniform(0.05, 0.3) + rng.uniform(0, 6.3))
    half = rows / 2.0 * np.sqrt(np.clip(1.0 - c * c, 0.0, 1.0)) * wobble
    center = y0 + rows / 2.0
    top = np.clip(np.round(center - half), y0, y0 + rows).astype(np.int64)
    bot = np.clip(np.round(center + half), y0, y0 + rows).astype(np.int64)
    keep = bot > top
    if not keep.any():  # degenerate: one pixel in the middle
        keep[cols // 2] = True
        top[cols // 2] = int(center)
        bot[cols // 2] = int(center) + 1
    col_idx = np.nonzero(keep)[0] + x0
    top, bot = top[keep], bot[keep]
    starts = col_idx * img_h + top
    ends = col_idx * img_h + bot
    # merge runs that touch across a column boundary (a column filled to the bottom, the next from row 0)
    touch = ends[:-1] == starts[1:]
    if touch.any():
        starts = np.concatenate([starts[:1], starts[1:][~touch]])
        ends = np.concatenate([ends[:-1][~touch], ends[-1:]])
    bounds = np.empty(2 * len(starts) + 2, dtype=np.int64)
    bounds[0] = 0
    bounds[1:-1:2] = starts
    bounds[2:-1:2] = ends
    bounds[-1] = img_w * img_h
    counts = np.diff(bounds)
    if counts[-1] == 0:
        counts = counts[:-1]
    area = float((ends - starts).sum())
    bx, by = float(col_idx[0]), float(top.min())
    bbox = [bx, by, float(col_idx[-1] + 1) - bx, float(bot.max()) - by]
    return counts.tolist(), area, bbox


def _make_chunk(spec: SampleSpec, plan: _ImagePlan, c: int) -> _Chunk:
    lo = c * IMAGES_PER_CHUNK
    hi = min(lo + IMAGES_PER_CHUNK, len(plan.nboxes))
    rng = np.random.default_rng([spec.seed, 1, c])
    nb = plan.nboxes[lo:hi]
    n_ann = int(nb.sum())
    image_idx = np.repeat(np.arange(hi - lo), nb)
    W = plan.width[lo:hi][image_idx].astype(np.float64)
    H = plan.height[lo:hi][image_idx].astype(np.float64)

    k = len(CLASSES)
    p = 1.0 / np.arange(1, k + 1) ** ZIPF_EXPONENT
    cat = rng.choice(k, size=n_ann, p=p / p.sum())
    u = rng.random(n_ann)
    kind = np.where(
        u < spec.rle_fraction, RLE, np.where(u < spec.rle_fraction + spec.polygon_fraction, POLY, BOX)
    ).astype(np.int8)

    aspect = np.array([cl[2] for cl in CLASSES])[cat] * np.exp(rng.normal(0.0, 0.2, n_ann))
    size = np.array([cl[3] for cl in CLASSES])[cat] * np.exp(rng.normal(0.0, 0.6, n_ann))
    size = np.where(kind == RLE, size * 2.0, size)  # crowd regions cover groups of objects
    side = size * np.sqrt(W * H)
    bw = np.clip(side / np.sqrt(aspect), 2.0, W * 0.98)
    bh = np.clip(side * np.sqrt(aspect), 2.0, H * 0.98)
    bx = rng.random(n_ann) * (W - bw)
    by = rng.random(n_ann) * (H - bh)
    bx, by, bw, bh = _floor2(bx), _floor2(by), _floor2(bw), _floor2(bh)  # x + w stays <= W
    bbox = np.stack([bx, by, bw, bh], axis=1)
    area = np.round(bw * bh, 2)

    occluded = rng.random(n_ann) < OCCLUDED_P
    custom = np.full(n_ann, -1, dtype=np.int8)
    is_car, is_person = cat == 1, cat == 0
    custom[is_car] = rng.choice(len(CAR_COLORS), size=int(is_car.sum()), p=CAR_COLOR_P)
    custom[is_person] = rng.choice(len(PERSON_POSES), size=int(is_person.sum()), p=PERSON_POSE_P)

    polys: list = [None] * n_ann
    npts = rng.integers(POLY_POINTS[0], POLY_POINTS[1], size=n_ann)
    is_poly = kind == POLY
    for kk in np.unique(npts[is_poly]).tolist():
        idx = np.nonzero(is_poly & (npts == kk))[0]
        m = len(idx)
        step = 2.0 * np.pi / kk
        theta = (
            np.arange(kk) * step
            + rng.uniform(0.0, step, size=(m, 1))
            + rng.uniform(-0.35 * step, 0.35 * step, size=(m, kk))
        )
        r = 0.55 + 0.45 * rng.random((m, kk))
        cx = (bx[idx] + bw[idx] / 2.0)[:, None]
        cy = (by[idx] + bh[idx] / 2.0)[:, None]
        px = np.round(cx + bw[idx, None] / 2.0 * r * np.cos(theta), 2)
        py = np.round(cy + bh[idx, None] / 2.0 * r * np.sin(theta), 2)
        x0, y0 = px.min(axis=1), py.min(axis=1)
        bbox[idx] = np.stack(
            [x0, y0, np.round(px.max(axis=1) - x0, 2), np.round(py.max(axis=1) - y0, 2)], axis=1
        )
        shoelace = 0.5 * np.abs(
            (px * np.roll(py, -1, axis=1)).sum(axis=1) - (py * np.roll(px, -1, axis=1)).sum(axis=1)
        )
        area[idx] = np.round(shoelace, 2)
        flat = np.empty((m, 2 * kk), dtype=np.float64)
        flat[:, 0::2] = px
        flat[:, 1::2] = py
        for j, row in zip(idx.tolist(), flat.tolist(), strict=True):
            polys[j] = row

    rles: list = [None] * n_ann
    iw = plan.width[lo:hi][image_idx]
    ih = plan.height[lo:hi][image_idx]
    for j in np.nonzero(kind == RLE)[0].tolist():
        counts, a, b = _rle_blob(rng, bx[j], by[j], bw[j], bh[j], int(iw[j]), int(ih[j]))
        rles[j] = (counts, [int(ih[j]), int(iw[j])])
        area[j] = a
        bbox[j] = b

    return _Chunk(lo, image_idx, cat, kind, bbox, area, occluded, custom, polys, rles)


def _attribute_dicts() -> dict[tuple[bool, int, int], dict[str, Any]]:
    """Shared ``attributes`` objects keyed by (occluded, class, custom value index)."""
    out: dict[tuple[bool, int, int], dict[str, Any]] = {}
    for occ in (False, True):
        out[(occ, -1, -1)] = {"occluded": occ, "rotation": 0.0}
        for i, v in enumerate(CAR_COLORS):
            out[(occ, 1, i)] = {"occluded": occ, "rotation": 0.0, "color": v}
        for i, v in enumerate(PERSON_POSES):
            out[(occ, 0, i)] = {"occluded": occ, "rotation": 0.0, "pose": v}
    return out


_ATTRS = _attribute_dicts()
_EMPTY: list = []


def _chunk_annotation_json(ch: _Chunk, first_ann_id: int) -> bytes:
    """The chunk's annotations as JSON array items (no brackets)."""
    n = len(ch.cat)
    if n == 0:
        return b""
    ids = range(first_ann_id, first_ann_id + n)
    image_ids = (ch.image_idx + ch.first_image + 1).tolist()
    cats = ch.cat.tolist()
    kinds = ch.kind.tolist()
    bboxes = ch.bbox.tolist()
    areas = ch.area.tolist()
    occ = ch.occluded.tolist()
    custom = ch.custom.tolist()
    anns = []
    for i in range(n):
        kd = kinds[i]
        if kd == POLY:
            seg: Any = [ch.polys[i]]
        elif kd == RLE:
            counts, size = ch.rles[i]
            seg = {"counts": counts, "size": size}
        else:
            seg = _EMPTY
        cu = custom[i]
        attrs = _ATTRS[(occ[i], cats[i] if cu >= 0 else -1, cu)]
        anns.append(
            {
                "id": ids[i],
                "image_id": image_ids[i],
                "category_id": cats[i] + 1,
                "segmentation": seg,
                "area": areas[i],
                "bbox": bboxes[i],
                "iscrowd": 1 if kd == RLE else 0,
                "attributes": attrs,
            }
        )
    return orjson.dumps(anns)[1:-1]


def _images_json(plan: _ImagePlan, lo: int, hi: int) -> bytes:
    w = plan.width[lo:hi].tolist()
    h = plan.height[lo:hi].tolist()
    items = [
        {
            "id": lo + i + 1,
            "width": w[i],
            "height": h[i],
            "file_name": plan.file_names[lo + i],
            "license": 0,
            "flickr_url": "",
            "coco_url": "",
            "date_captured": 0,
        }
        for i in range(hi - lo)
    ]
    return orjson.dumps(items)[1:-1] if items else b""


# --------------------------------------------------------------------------------------------------
# JPEG rendering (runs in worker processes)

_GRAIN_TILE = 512
_GRAIN_SIGMA = 3
_grain_cache: dict[str, np.ndarray] = {}


def _grain(height: int, width: int) -> np.ndarray:
    """Fine grain (uint8, centred on ``_GRAIN_SIGMA``) covering (height + tile, width + tile).

    Pixel (y, x) is always ``tile[y % T, x % T]`` whatever size was built, so it is deterministic.
    """
    g = _grain_cache.get("g")
    if g is None or g.shape[0] < height + _GRAIN_TILE or g.shape[1] < width + _GRAIN_TILE:
        rng = np.random.default_rng(12345)
        tile = np.clip(
            rng.normal(_GRAIN_SIGMA, _GRAIN_SIGMA, size=(_GRAIN_TILE, _GRAIN_TILE, 3)), 0, 2 * _GRAIN_SIGMA
        )
        tile = tile.astype(np.uint8)
        hh = max(height, 0 if g is None else g.shape[0] - _GRAIN_TILE)
        ww = max(width, 0 if g is None else g.shape[1] - _GRAIN_TILE)
        reps = (-(-hh // _GRAIN_TILE) + 1, -(-ww // _GRAIN_TILE) + 1, 1)
        g = np.ascontiguousarray(np.tile(tile, reps))
        _grain_cache["g"] = g
    return g


def render_array(
    width: int,
    height: int,
    seed: Sequence[int] | int,
    shapes: Sequence[tuple[int, int, Sequence[float], Sequence[float] | None]] = (),
) -> np.ndarray:
    """A picture that looks like something, as an (height, width, 3) uint8 RGB array.

    Background: a smooth two-colour gradient with low-frequency noise, different per ``seed``.
    ``shapes`` are (class index, kind, bbox [x, y, w, h], flat polygon or None) drawn in per-class
    colours: boxes as filled rectangles with some inner structure, polygons as polygons, crowd regions
    as ellipses. Fine grain on top so the JPEG has a realistic amount of detail.
    """
    rng = np.random.default_rng(seed)
    lw, lh = max(2, width // 24), max(2, height // 24)
    c0, c1 = rng.uniform(25, 230, size=(2, 3))
    ang = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:lh, 0:lw]
    t = xx / lw * np.cos(ang) + yy / lh * np.sin(ang)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    low = c0 + (c1 - c0) * t[..., None] + rng.normal(0.0, 12.0, size=(lh, lw, 3))
    low = np.clip(low, 0, 255).astype(np.uint8)
    img = cv2.resize(low, (width, height), interpolation=cv2.INTER_LINEAR)

    jitter = rng.uniform(0.75, 1.2, size=(max(len(shapes), 1), 3))
    order = sorted(range(len(shapes)), key=lambda i: -(shapes[i][2][2] * shapes[i][2][3]))
    for i in order:
        cls, kind, (x, y, w, h), poly = shapes[i]
        base = np.array(CLASSES[cls % len(CLASSES)][4], dtype=np.float64)
        fill = tuple(np.clip(base * jitter[i], 0, 255).astype(int).tolist())
        edge = tuple(int(v * 0.5) for v in fill)
        if kind == POLY and poly:
            pts = np.round(np.asarray(poly, dtype=np.float64).reshape(-1, 2) * 4).astype(np.int32)
            cv2.fillPoly(img, [pts], fill, lineType=cv2.LINE_AA, shift=2)
            cv2.polylines(img, [pts], True, edge, 1, lineType=cv2.LINE_AA, shift=2)
        elif kind == RLE:
            center = (round((x + w / 2) * 4), round((y + h / 2) * 4))
            axes = (max(1, round(w * 2)), max(1, round(h * 2)))
            cv2.ellipse(img, center, axes, 0, 0, 360, fill, -1, lineType=cv2.LINE_AA, shift=2)
        else:
            x0, y0, x1, y1 = int(x), int(y), int(x + w), int(y + h)
            cv2.rectangle(img, (x0, y0), (x1, y1), fill, -1)
            cv2.rectangle(img, (x0, y0), (x1, y1), edge, max(1, int(min(w, h) / 20)))
            if w > 12 and h > 12:  # a little inner structure
                inner = tuple(int(v * 0.8) for v in fill)
                cv2.rectangle(
                    img,
                    (int(x + w * 0.2), int(y + h * 0.15)),
                    (int(x + w * 0.8), int(y + h * 0.45)),
                    inner,
                    -1,
                )
    ox, oy = (int(v) for v in rng.integers(0, _GRAIN_TILE, size=2))
    g = _grain(height, width)[oy : oy + height, ox : ox + width]
    img = cv2.subtract(cv2.add(img, g), (_GRAIN_SIGMA, _GRAIN_SIGMA, _GRAIN_SIGMA, 0))
    return img


def render_jpeg(
    width: int,
    height: int,
    seed: Sequence[int] | int,
    shapes: Sequence[tuple[int, int, Sequence[float], Sequence[float] | None]] = (),
    quality: int = 85,
) -> bytes:
    """``render_array`` encoded as JPEG with Pillow at ``quality``."""
    buf = io.BytesIO()
    Image.fromarray(render_array(width, height, seed, shapes), "RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _init_render_worker() -> None:
    cv2.setNumThreads(1)  # one process per core already


def _render_batch(tasks: list[tuple[str, int, int, tuple[int, ...], list, int]]) -> int:
    for path, w, h, seed, shapes, quality in tasks:
        data = render_jpeg(w, h, seed, shapes, quality)
        with open(path, "wb") as f:
            f.write(data)
    return len(tasks)


def _image_tasks(spec: SampleSpec, plan: _ImagePlan, ch: _Chunk, images_root: Path) -> Iterator[tuple]:
    lo = ch.first_image
    n_img = len(plan.nboxes[lo : lo + IMAGES_PER_CHUNK])
    offsets = np.concatenate([[0], np.cumsum(plan.nboxes[lo : lo + n_img])])
    cats = ch.cat.tolist()
    kinds = ch.kind.tolist()
    bboxes = ch.bbox.tolist()
    for i in range(n_img):
        a, b = int(offsets[i]), int(offsets[i + 1])
        shapes = [(cats[j], kinds[j], bboxes[j], ch.polys[j]) for j in range(a, b)]
        gi = lo + i
        yield (
            str(images_root / plan.file_names[gi]),
            int(plan.width[gi]),
            int(plan.height[gi]),
            (spec.seed, 2, gi + 1),
            shapes,
            spec.jpeg_quality,
        )


# --------------------------------------------------------------------------------------------------
# public API


def generate_cvat_coco(
    out_dir: Path, spec: SampleSpec, progress: Callable[[int, int], None] | None = None
) -> Path:
    """Write a CVAT COCO 1.0 export to ``out_dir`` (annotations/instances_default.json + images/...).

    ``progress(done_images, total_images)`` is called as images are finished (per chunk of
    annotations in annotations-only mode). Returns ``out_dir``.

    JPEGs are rendered by ``spec.workers`` processes started with "forkserver" (forking a parent that
    already used OpenCV, or runs threads, can deadlock), so a script calling this with workers != 1
    needs the usual ``if __name__ == "__main__":`` guard.
    """
    out_dir = Path(out_dir)
    ann_path = out_dir / ANNOTATIONS_NAME
    ann_path.parent.mkdir(parents=True, exist_ok=True)
    images_root = out_dir / IMAGES_DIR
    plan = _plan_images(spec)
    n = len(plan.nboxes)
    n_chunks = (n + IMAGES_PER_CHUNK - 1) // IMAGES_PER_CHUNK

    workers = spec.workers or os.cpu_count() or 1
    pool: ProcessPoolExecutor | None = None
    pending: deque[Future] = deque()
    done_images = 0

    def report() -> None:
        if progress is not None:
            progress(done_images, n)

    def drain(limit: int) -> None:
        nonlocal done_images
        while len(pending) > limit:
            done_images += pending.popleft().result()
            report()

    if spec.with_images:
        images_root.mkdir(parents=True, exist_ok=True)
        dirs = {str(Path(f).parent) for f in plan.file_names}
        for d in sorted(dirs):
            (images_root / d).mkdir(parents=True, exist_ok=True)
        if workers > 1 and n > 1:
            # forkserver, not fork: a parent that already used OpenCV (or has threads) deadlocks forked children
            pool = ProcessPoolExecutor(
                max_workers=workers, mp_context=mp.get_context("forkserver"), initializer=_init_render_worker
            )

    tmp_path = ann_path.with_name(ann_path.name + ".tmp")
    try:
        with open(tmp_path, "wb", buffering=1 << 20) as f:
            f.write(b'{"licenses":' + orjson.dumps(LICENSES))
            f.write(b',"info":' + orjson.dumps(INFO))
            f.write(b',"categories":' + orjson.dumps(categories()))
            f.write(b',"images":[')
            sep = b""
            for lo in range(0, n, 16384):
                part = _images_json(plan, lo, min(n, lo + 16384))
                if part:
                    f.write(sep + part)
                    sep = b","
            f.write(b'],"annotations":[')
            sep = b""
            next_id = 1
            for c in range(n_chunks):
                ch = _make_chunk(spec, plan, c)
                part = _chunk_annotation_json(ch, next_id)
                next_id += len(ch.cat)
                if part:
                    f.write(sep + part)
                    sep = b","
                if spec.with_images:
                    batch: list = []
                    for task in _image_tasks(spec, plan, ch, images_root):
                        batch.append(task)
                        if len(batch) == 16:
                            if pool is None:
                                done_images += _render_batch(batch)
                                report()
                            else:
                                pending.append(pool.submit(_render_batch, batch))
                                drain(4 * workers)
                            batch = []
                    if batch:
                        if pool is None:
                            done_images += _render_batch(batch)
                            report()
                        else:
                            pending.append(pool.submit(_render_batch, batch))
                else:
                    done_images = min(n, (c + 1) * IMAGES_PER_CHUNK)
                    report()
                del ch
            f.write(b"]}")
        drain(0)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    finally:
        if pool is not None:
            for fut in pending:
                fut.cancel()
            pool.shutdown(wait=True)
    os.replace(tmp_path, ann_path)
    if n == 0:
        report()
    return out_dir


_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_ZIP_LEVEL_ATTR = "compress_level" if hasattr(zipfile.ZipInfo, "compress_level") else "_compresslevel"


def _zip_add(zf: zipfile.ZipFile, src: Path, arcname: str, compress: int) -> None:
    info = zipfile.ZipInfo(arcname, date_time=_ZIP_DATE)
    info.compress_type = compress
    if compress == zipfile.ZIP_DEFLATED:
        # JSON deflates ~4x even at level 1, ~3x faster than the default (attribute is private before 3.13)
        setattr(info, _ZIP_LEVEL_ATTR, 1)
    info.external_attr = 0o644 << 16
    with open(src, "rb") as fin, zf.open(info, "w", force_zip64=True) as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)


def generate_cvat_coco_zip(
    zip_path: Path, spec: SampleSpec, progress: Callable[[int, int], None] | None = None
) -> Path:
    """The same export zipped like CVAT's download: ``annotations/instances_default.json`` + ``images/...``.

    Only file entries (no directory entries), fixed timestamps, so the zip is byte-identical per seed.
    """
    zip_path = Path(zip_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=zip_path.parent, prefix=".dsgen-sample-") as tmp:
        root = generate_cvat_coco(Path(tmp) / "export", spec, progress)
        tmp_zip = Path(tmp) / "out.zip"
        with zipfile.ZipFile(tmp_zip, "w", allowZip64=True) as zf:
            _zip_add(zf, root / ANNOTATIONS_NAME, ANNOTATIONS_NAME, zipfile.ZIP_DEFLATED)
            images_root = root / IMAGES_DIR
            if images_root.is_dir():
                files = sorted(p.relative_to(root).as_posix() for p in images_root.rglob("*") if p.is_file())
                for rel in files:
                    _zip_add(zf, root / rel, rel, zipfile.ZIP_STORED)  # JPEGs don't deflate
        os.replace(tmp_zip, zip_path)
    return zip_path


# --------------------------------------------------------------------------------------------------
# helpers for tests: good and bad image files


def write_sample_jpeg(
    path: Path, width: int = 1280, height: int = 720, seed: int = 0, quality: int = 85, n_shapes: int = 8
) -> Path:
    """A realistic JPEG (gradient, grain, a few class-coloured shapes), different per seed."""
    rng = np.random.default_rng([seed, 3])
    shapes = []
    for _ in range(n_shapes):
        w = float(rng.uniform(0.05, 0.4) * width)
        h = float(rng.uniform(0.05, 0.4) * height)
        x = float(rng.uniform(0, width - w))
        y = float(rng.uniform(0, height - h))
        shapes.append((int(rng.integers(len(CLASSES))), BOX, [x, y, w, h], None))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render_jpeg(width, height, [seed, 4], shapes, quality))
    return path


def write_truncated_jpeg(
    path: Path, width: int = 640, height: int = 480, keep: float = 0.6, seed: int = 0
) -> Path:
    """A JPEG whose bytes stop after ``keep`` of the file: the header is fine, the scan data is cut."""
    data = render_jpeg(width, height, [seed, 5], (), 85)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: max(1, int(len(data) * keep))])
    return path


def write_jpeg_with_exif_orientation(
    path: Path, width: int, height: int, orientation: int, quality: int = 90
) -> Path:
    """A ``width`` × ``height`` JPEG (stored pixels) with EXIF orientation tag 274 = ``orientation``.

    The stored top-left quarter is red and the rest blue, so a test can tell where the corner went
    after the orientation is applied.
    """
    img = Image.new("RGB", (width, height), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, width // 2, height // 2))
    exif = Image.Exif()
    exif[274] = int(orientation)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, "JPEG", quality=quality, exif=exif.tobytes())
    return path


def write_jpeg_with_trailing_bytes(path: Path, width: int = 320, height: int = 240, extra: int = 64) -> Path:
    """A valid JPEG followed by padding after the EOI marker, as some cameras write (not corrupt)."""
    data = render_jpeg(width, height, [0, 6], (), 85)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data + b"\x00" * extra)
    return path


def write_png(path: Path, width: int = 320, height: int = 240, seed: int = 0, mode: str = "RGB") -> Path:
    """A PNG of random-ish content."""
    rng = np.random.default_rng([seed, 7])
    arr = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    img = Image.fromarray(arr, "RGB")
    if mode != "RGB":
        img = img.convert(mode)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, "PNG")
    return path


def write_random_bytes(path: Path, n: int = 4096, seed: int = 0) -> Path:
    """Bytes that are no image format at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng([seed, 8]).integers(0, 256, size=n, dtype=np.uint8).tobytes())
    return path


def write_empty_file(path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path
