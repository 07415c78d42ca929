"""Building lake tables from parsed records: one builder every non-COCO reader fills row by row.

Columns are kept as Python lists and turned into Arrow once, in the exact lake schema. Geometry
helpers compute what every reader needs the same way: a polygon's box and its shoelace area.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from dsgen_core.lake.schema import ANNOTATIONS_SCHEMA, CATEGORIES_SCHEMA, IMAGES_SCHEMA
from dsgen_core.lake.tables import DatasetTables

__all__ = ["TableBuilder", "dumps", "polygon_box", "shoelace"]


def dumps(value: Any) -> str | None:
    """JSON text for an attributes/extra column; None for an empty or missing object."""
    if not value:
        return None
    return orjson.dumps(value).decode()


def shoelace(flat: Sequence[float]) -> float:
    """Area of a closed polygon given as [x0, y0, x1, y1, …]."""
    xs, ys = flat[0::2], flat[1::2]
    n = len(xs)
    s = 0.0
    for i in range(n):
        j = (i + 1) % n
        s += xs[i] * ys[j] - xs[j] * ys[i]
    return abs(s) / 2.0


def polygon_box(polys: Sequence[Sequence[float]]) -> tuple[float, float, float, float]:
    """[x, y, w, h] enclosing every point of every part."""
    xs = [v for p in polys for v in p[0::2]]
    ys = [v for p in polys for v in p[1::2]]
    x0, y0 = min(xs), min(ys)
    # nine decimals: the subtraction's float noise (101.20000000000005) is not part of the box
    return x0, y0, round(max(xs) - x0, 9), round(max(ys) - y0, 9)


class TableBuilder:
    """Accumulates images, annotations and categories; `tables()` gives them in the lake schema."""

    def __init__(self, source: str):
        self.source = source
        self._img: dict[str, list] = {n: [] for n in IMAGES_SCHEMA.names}
        self._ann: dict[str, list] = {n: [] for n in ANNOTATIONS_SCHEMA.names}
        self._cat: dict[str, list] = {n: [] for n in CATEGORIES_SCHEMA.names}
        self._counts: dict[int, int] = {}
        self._chunks: list[pa.Table] = []  # annotations added in bulk by `boxes`
        self.next_image_id = 1
        self.next_annotation_id = 1

    @property
    def num_images(self) -> int:
        return len(self._img["image_id"])

    @property
    def num_annotations(self) -> int:
        return len(self._ann["annotation_id"])

    def category(self, category_id: int, name: str, supercategory: str | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        c = self._cat
        c["category_id"].append(int(category_id))
        c["name"].append(name)
        c["supercategory"].append(supercategory)
        c["keypoints"].append(None)
        c["skeleton"].append(None)
        c["extra"].append(dumps(extra))

    def image(self, file_name: str, width: int | None, height: int | None, image_id: int | None = None,
              exif_orientation: int | None = None, extra: dict[str, Any] | None = None) -> int:
        if image_id is None:
            image_id = self.next_image_id
        self.next_image_id = max(self.next_image_id, image_id + 1)
        row = dict.fromkeys(IMAGES_SCHEMA.names)
        row.update(image_id=image_id, file_name=file_name, width=width, height=height,
                   exif_orientation=exif_orientation, extra=dumps(extra), num_annotations=0)
        for k, v in row.items():
            self._img[k].append(v)
        return image_id

    def images(self, file_names: list[str], widths: list[int | None], heights: list[int | None],
               orientations: list[int | None]) -> list[int]:
        """Many image rows at once (ids in order); what `image` does row by row."""
        n = len(file_names)
        ids = list(range(self.next_image_id, self.next_image_id + n))
        self.next_image_id += n
        cols = {"image_id": ids, "file_name": file_names, "width": widths, "height": heights,
                "exif_orientation": orientations, "num_annotations": [0] * n}
        for k in IMAGES_SCHEMA.names:
            self._img[k].extend(cols.get(k) or [None] * n)
        return ids

    def annotation(
        self,
        image_id: int,
        category_id: int | None,
        kind: str,
        box: Sequence[float] | None = None,
        polygons: list[list[float]] | None = None,
        area: float | None = None,
        attributes: dict[str, Any] | None = None,
        score: float | None = None,
        keypoints: list[float] | None = None,
        extra: dict[str, Any] | None = None,
        rle: str | None = None,
        iscrowd: bool | None = None,
        is_machine: bool = False,
    ) -> int:
        """Add one annotation; a polygon without a box gets its extent, and area defaults to
        the polygon's shoelace area (or w*h for a box)."""
        if polygons and box is None:
            box = polygon_box(polygons)
        if area is not None and math.isnan(area):  # the caller's way of saying "no area" (lines, points)
            area = None
        elif area is None:
            if polygons:
                area = sum(shoelace(p) for p in polygons)
            elif box is not None:
                area = float(box[2]) * float(box[3])
        a = self._ann
        aid = self.next_annotation_id
        self.next_annotation_id += 1
        a["annotation_id"].append(aid)
        a["image_id"].append(image_id)
        a["category_id"].append(category_id)
        a["annotation_type"].append(kind)
        bx = box if box is not None else (None, None, None, None)
        a["bbox_x"].append(bx[0])
        a["bbox_y"].append(bx[1])
        a["bbox_w"].append(bx[2])
        a["bbox_h"].append(bx[3])
        a["area"].append(area)
        a["iscrowd"].append(iscrowd)
        a["polygons"].append(polygons)
        a["rle"].append(rle)
        a["attributes"].append(dumps(attributes))
        a["keypoints"].append(keypoints)
        a["num_keypoints"].append(None if keypoints is None else sum(1 for v in keypoints[2::3] if v > 0))
        a["score"].append(score)
        a["is_machine"].append(is_machine)
        a["source"].append(self.source)
        a["extra"].append(dumps(extra))
        self._counts[image_id] = self._counts.get(image_id, 0) + 1
        return aid

    def boxes(self, image_ids: np.ndarray, category_ids: np.ndarray, box: np.ndarray,
              scores: np.ndarray | None = None) -> None:
        """Many BBOX annotations at once (columns as numpy arrays, `box` n×4 `x y w h`), ids in row order."""
        n = int(image_ids.size)
        if not n:
            return
        ids = np.arange(self.next_annotation_id, self.next_annotation_id + n, dtype=np.int64)
        self.next_annotation_id += n
        cols: dict[str, pa.Array] = {
            "annotation_id": pa.array(ids), "image_id": pa.array(image_ids.astype(np.int64)),
            "category_id": pa.array(category_ids.astype(np.int64)),
            "annotation_type": pa.repeat(pa.scalar("BBOX", pa.string()), n),
            "bbox_x": pa.array(box[:, 0]), "bbox_y": pa.array(box[:, 1]), "bbox_w": pa.array(box[:, 2]),
            "bbox_h": pa.array(box[:, 3]), "area": pa.array(box[:, 2] * box[:, 3]),
            "score": pa.array(scores) if scores is not None else pa.nulls(n, pa.float64()),
            "is_machine": pa.repeat(pa.scalar(scores is not None), n),
            "source": pa.repeat(pa.scalar(self.source, pa.string()), n),
        }
        table = pa.table({f.name: cols.get(f.name, pa.nulls(n, f.type)) for f in ANNOTATIONS_SCHEMA},
                         schema=ANNOTATIONS_SCHEMA)
        self._chunks.append(table)
        order = image_ids if bool((image_ids[1:] >= image_ids[:-1]).all()) else np.sort(image_ids)
        starts = np.flatnonzero(np.diff(order, prepend=order[0] - 1))
        counts = np.diff(np.append(starts, order.size))
        for i, c in zip(order[starts].tolist(), counts.tolist(), strict=True):
            self._counts[i] = self._counts.get(i, 0) + c

    def tables(self, meta: dict[str, Any] | None = None) -> DatasetTables:
        self._img["num_annotations"] = [self._counts.get(i, 0) for i in self._img["image_id"]]
        annotations = pa.table(self._ann, schema=ANNOTATIONS_SCHEMA)
        if self._chunks:  # ids grow with every add, so only a mix of both ways needs sorting
            annotations = pa.concat_tables([annotations, *self._chunks])
            if self._ann["annotation_id"]:
                annotations = annotations.sort_by("annotation_id")
        return DatasetTables(
            images=pa.table(self._img, schema=IMAGES_SCHEMA),
            annotations=annotations,
            categories=pa.table(self._cat, schema=CATEGORIES_SCHEMA),
            meta=dict(meta or {}),
        )
