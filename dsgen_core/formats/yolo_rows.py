"""YOLO label rows, both directions, shared by the Ultralytics and the Darknet ("YOLO 1.1") layouts.

Rows are normalised to the image size, from the top-left corner, with no offset:
`cls cx cy w h [confidence]` for boxes and `cls x1 y1 x2 y2 …` (≥ 3 points) for polygons.
Reading converts them to absolute pixels of the image as displayed; writing is the inverse,
vectorised with numpy, and takes the box of every object from the lake's bbox columns.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from dsgen_core.formats.base import WriteOptions
from dsgen_core.formats.build import TableBuilder
from dsgen_core.formats.classmap import ClassMap
from dsgen_core.formats.textout import SHAPE_SQL, query
from dsgen_core.validation import MAX_EXAMPLES, ValidationReport

__all__ = ["LabelIssues", "label_texts", "read_clean_files", "read_label_text", "rows_by_image", "yolo_carried"]

_TOLERANCE = 1e-6  # values this far outside 0–1 are rounding, not faults


@dataclass
class LabelIssues:
    """Faults found while reading label files, reported once with counts and first examples."""

    malformed: list[str] = field(default_factory=list)
    bad_class: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def note(self, kind: str, example: str) -> None:
        self.counts[kind] += 1
        bucket = getattr(self, kind)
        if len(bucket) < MAX_EXAMPLES:
            bucket.append(example)

    def flush(self, report: ValidationReport, names: int) -> None:
        c = self.counts
        report.error("malformed_line", "label rows that are not `cls cx cy w h [conf]` or `cls x1 y1 x2 y2 …` "
                     "(at least 3 points)", c["malformed"], self.malformed)
        report.error("class_out_of_range", f"class ids outside the {names} names declared", c["bad_class"],
                     self.bad_class)
        report.warning("coords_out_of_range", "normalised coordinates outside 0–1 (Ultralytics skips such images)",
                       c["outside"], self.outside)
        report.warning("duplicate_row", "label rows repeated within one file (kept)", c["duplicates"],
                       self.duplicates)


def read_label_text(builder: TableBuilder, image_id: int, text: str, where: str, width: int, height: int,
                    names: int, issues: LabelIssues) -> None:
    """Add one annotation per row of a label file; faults go to `issues` with file and line number."""
    seen: set[str] = set()
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        parts = line.split()
        at = f"{where}:{lineno}"
        try:
            values = [float(v) for v in parts[1:]]
            cls = int(parts[0])
        except ValueError:
            issues.note("malformed", f"{at}: {line[:80]!r} is not numbers")
            continue
        n = len(values)
        if n not in (4, 5) and (n < 6 or n % 2):
            issues.note("malformed", f"{at}: {len(parts)} columns")
            continue
        if not 0 <= cls < names:
            issues.note("bad_class", f"{at}: class {cls} (names has {names})")
            continue
        if line in seen:
            issues.note("duplicates", f"{at}: {line[:80]}")
        seen.add(line)
        coords = values[:4] if n in (4, 5) else values
        if min(coords) < -_TOLERANCE or max(coords) > 1 + _TOLERANCE:
            issues.note("outside", f"{at}: {line[:80]}")
        if n in (4, 5):
            cx, cy, w, h = values[:4]
            extra = values[4] if n == 5 else None
            score, attrs = None, None
            if extra is not None and 0.0 <= extra <= 1.0:
                score = extra
            elif extra is not None:  # CVAT's "Detection Track" appends an integer track id
                attrs = {"track_id": int(extra) if extra.is_integer() else extra}
            box = ((cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height)
            builder.annotation(image_id, cls, "BBOX", box=box, score=score, attributes=attrs,
                               is_machine=score is not None)
        else:
            pts = np.asarray(values, dtype=np.float64)
            pts[0::2] *= width
            pts[1::2] *= height
            builder.annotation(image_id, cls, "SEGMENTATION", polygons=[pts.tolist()])


def read_clean_files(builder: TableBuilder, image_ids: Sequence[int], texts: Sequence[str | None],
                     sizes: Sequence[tuple[int, int]], names: int) -> bool:
    """Parse every file at once when all rows are clean box rows (same column count, 5 or 6, single
    spaces, no blank lines, classes in range, values in 0–1, no repeats); False leaves the builder
    untouched, so the caller reads file by file and reports each fault with its line."""
    present = [k for k, t in enumerate(texts) if t]
    if not present:
        return True
    parts = [texts[k] if texts[k].endswith("\n") else texts[k] + "\n" for k in present]
    big = "".join(parts)
    raw = np.frombuffer(big.encode(), dtype=np.uint8)
    newlines = np.flatnonzero(raw == 10)
    per_line = np.diff(np.searchsorted(np.flatnonzero(raw == 32), newlines), prepend=0)  # spaces per line
    ncols = int(per_line[0]) + 1
    if ncols not in (5, 6) or not (per_line == per_line[0]).all():
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            vals = np.fromstring(big, sep=" ")  # text mode: a C parser, and a ValueError on anything else
    except ValueError:
        return False
    if vals.size != newlines.size * ncols:
        return False
    vals = vals.reshape(-1, ncols)
    cls = vals[:, 0]
    coords = vals[:, 1:5]
    score = vals[:, 5] if ncols == 6 else None
    if ((cls != np.floor(cls)) | (cls < 0) | (cls >= names)).any() or coords.min() < -_TOLERANCE \
            or coords.max() > 1 + _TOLERANCE or (score is not None and ((score < 0) | (score > 1)).any()):
        return False
    rows_per_file = [p.count("\n") for p in parts]
    if any(len(set(p.split("\n"))) != n + 1 for p, n in zip(parts, rows_per_file, strict=True)):
        return False  # a repeated row: the slow path names it
    owner = np.repeat(np.asarray(present), rows_per_file)
    wh = np.asarray(sizes, dtype=np.float64)[owner]
    box = np.empty((vals.shape[0], 4))
    box[:, 0] = (coords[:, 0] - coords[:, 2] / 2) * wh[:, 0]
    box[:, 1] = (coords[:, 1] - coords[:, 3] / 2) * wh[:, 1]
    box[:, 2] = coords[:, 2] * wh[:, 0]
    box[:, 3] = coords[:, 3] * wh[:, 1]
    builder.boxes(np.asarray(image_ids, dtype=np.int64)[owner], cls.astype(np.int64), box, score)
    return True


def yolo_carried(segment: bool) -> set[str]:
    """Box rows carry boxes (a multi-part outline is one box); polygon rows carry outlines too."""
    return {"boxes", "polygons"} if segment else {"boxes", "multipart"}


def segment_task(tables_list: Sequence, options: WriteOptions) -> bool:
    """"auto": polygons when every box-like object has an outline (mixing makes Ultralytics drop them)."""
    if options.task in ("detect", "segment"):
        return options.task == "segment"
    total = with_outline = 0
    for t in tables_list:
        kinds = t.annotations.column("annotation_type").to_pylist()
        polys = t.annotations.column("polygons").to_pylist()
        for k, p in zip(kinds, polys, strict=True):
            if k in ("BBOX", "SEGMENTATION"):
                total += 1
                with_outline += k == "SEGMENTATION" and bool(p)
    return total > 0 and with_outline == total


_BOX_OK = (
    "a.annotation_type IN ('BBOX', 'SEGMENTATION') AND a.bbox_x IS NOT NULL AND a.bbox_y IS NOT NULL"
    " AND a.bbox_w IS NOT NULL AND a.bbox_h IS NOT NULL AND NOT (isnan(a.bbox_x) OR isnan(a.bbox_y)"
    " OR isnan(a.bbox_w) OR isnan(a.bbox_h)) AND i.width > 0 AND i.height > 0"
    f" AND {SHAPE_SQL} NOT IN ('polyline', 'points', 'cuboid')"
)


def label_texts(annotations: pa.Table, images: pa.Table, cmap: ClassMap, segment: bool,
                decimals: int) -> dict[int, str]:
    """The whole label file of every image with objects, keyed by image id (rows in annotation-id order)."""
    if segment:
        return {i: "".join(f"{x}\n" for x in rows)
                for i, rows in rows_by_image(annotations, images, cmap, True, decimals).items()}
    f = f"%.{int(decimals)}f"
    sql = f"""
        SELECT a.image_id,
               string_agg(printf('%d {f} {f} {f} {f}', m.cls, (a.bbox_x + a.bbox_w / 2) / i.width,
                                 (a.bbox_y + a.bbox_h / 2) / i.height, a.bbox_w / i.width, a.bbox_h / i.height)
                          || chr(10), '' ORDER BY a.annotation_id) AS txt
        FROM annotations a JOIN images i USING (image_id) JOIN cmap m USING (category_id)
        WHERE {_BOX_OK}
        GROUP BY a.image_id
    """  # noqa: S608 - fixed SQL, the format width is an int
    t = query(sql, annotations.select(["annotation_id", "image_id", "category_id", "annotation_type", "bbox_x",
                                       "bbox_y", "bbox_w", "bbox_h", "extra"]),
              images.select(["image_id", "width", "height"]), cmap)
    return dict(zip(t.column("image_id").to_pylist(), t.column("txt").to_pylist(), strict=True))


def _fmt(v: np.ndarray, decimals: int) -> list[str]:
    return np.char.mod(f"%.{decimals}f", v).tolist()


def rows_by_image(annotations: pa.Table, images: pa.Table, cmap: ClassMap, segment: bool,
                  decimals: int) -> dict[int, list[str]]:
    """Label lines per image id, in annotation-id order; only objects with a box and a mapped class."""
    sizes = {i: (w, h) for i, w, h in zip(images.column("image_id").to_pylist(), images.column("width").to_pylist(),
                                          images.column("height").to_pylist(), strict=True)}
    ann = annotations.sort_by("annotation_id")
    ids = ann.column("image_id").to_numpy(zero_copy_only=False)
    cats = ann.column("category_id").to_pylist()
    kinds = ann.column("annotation_type").to_pylist()
    box = np.stack([ann.column(c).to_numpy(zero_copy_only=False).astype(np.float64)
                    for c in ("bbox_x", "bbox_y", "bbox_w", "bbox_h")], axis=1) if ann.num_rows else np.zeros((0, 4))
    cls = np.array([cmap.by_category.get(c, -1) if c is not None else -1 for c in cats], dtype=np.int64)
    wh = np.array([sizes.get(int(i), (0, 0)) for i in ids], dtype=np.float64).reshape(-1, 2)
    shapes = _shapes(ann)
    ok = (cls >= 0) & np.isin(np.array(kinds, dtype=object), ["BBOX", "SEGMENTATION"]) & ~np.isnan(box).any(axis=1)
    ok &= np.array([s not in ("polyline", "points", "cuboid") for s in shapes], dtype=bool)
    ok &= (wh > 0).all(axis=1)
    out: dict[int, list[str]] = defaultdict(list)
    polys = ann.column("polygons").to_pylist() if segment else None
    if not segment:
        norm = np.empty_like(box)
        norm[:, 0] = (box[:, 0] + box[:, 2] / 2) / wh[:, 0]
        norm[:, 1] = (box[:, 1] + box[:, 3] / 2) / wh[:, 1]
        norm[:, 2] = box[:, 2] / wh[:, 0]
        norm[:, 3] = box[:, 3] / wh[:, 1]
        sel = np.flatnonzero(ok)
        cols = [_fmt(norm[sel, k], decimals) for k in range(4)]
        for j, i in enumerate(sel.tolist()):
            out[int(ids[i])].append(f"{cls[i]} {cols[0][j]} {cols[1][j]} {cols[2][j]} {cols[3][j]}")
        return out
    rles = ann.column("rle").to_pylist()
    for i in np.flatnonzero(ok).tolist():
        w, h = wh[i]
        parts = polys[i] or (_rle_polygons(rles[i]) if rles[i] else None)
        if not parts:
            x, y, bw, bh = box[i]
            parts = [[x, y, x + bw, y, x + bw, y + bh, x, y + bh]]
        for p in parts:
            pts = np.asarray(p, dtype=np.float64)
            pts[0::2] /= w
            pts[1::2] /= h
            out[int(ids[i])].append(f"{cls[i]} " + " ".join(_fmt(pts, decimals)))
    return out


def _shapes(ann: pa.Table) -> list[str | None]:
    import orjson

    out = []
    for e in ann.column("extra").to_pylist():
        out.append(orjson.loads(e).get("shape") if e and '"shape"' in e else None)
    return out


def _rle_polygons(rle_json: str) -> list[list[float]]:
    """Outer contours of a COCO RLE mask (the approximation the conversion report announces)."""
    import cv2

    from dsgen_core.formats.masks import decode_coco_rle

    contours, _ = cv2.findContours(decode_coco_rle(rle_json).astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1).astype(np.float64).tolist() for c in contours if len(c) >= 3]
