"""What a dataset holds, feature by feature, so each writer can say exactly what its format cannot carry.

A format declares the features it carries; `report_losses` counts every other feature present in
the splits (DuckDB over the Arrow tables, no Python loop per record) and records it as a loss
with its first examples.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import duckdb

from dsgen_core.formats.base import ConversionReport, Split
from dsgen_core.validation import MAX_EXAMPLES

__all__ = ["FEATURES", "report_losses"]

# Attributes every CVAT export carries with default values: not data worth a warning when lost.
_DEFAULT_ATTRS = "['occluded', 'rotation']"
_SHAPE = "json_extract_string(a.extra, '$.shape')"
_EXTRA_KEYS = "list_filter(json_keys(a.extra), lambda k: k NOT IN ('shape', 'cvat_xml'))"

# Image fields beyond name and size; CVAT's constant `date_captured: 0` and VOC's own id are not data.
_METADATA = (
    "len(list_filter(json_keys(extra), lambda k: k NOT IN ('date_captured', 'voc_id'))) > 0"
    " OR coalesce(flickr_url, '') <> '' OR coalesce(coco_url, '') <> ''"
    " OR coalesce(date_captured, '') NOT IN ('', '0')"
)

# feature → (message, SQL condition over annotations `a` joined to images `i`)
FEATURES: dict[str, tuple[str, str]] = {
    "boxes": ("boxes", f"a.annotation_type = 'BBOX' AND coalesce({_SHAPE}, 'box') = 'box'"),
    "polygons": (
        "polygon outlines",
        f"a.annotation_type = 'SEGMENTATION' AND len(a.polygons) > 0 AND coalesce({_SHAPE}, '') <> 'polyline'",
    ),
    "multipart": ("multi-part polygons (each part is written as its own object)", "len(a.polygons) > 1"),
    "rle": ("RLE masks (a polygon approximation or the box is all the target keeps)", "a.rle IS NOT NULL"),
    "iscrowd": ("iscrowd flags (crowd regions become ordinary objects)", "a.iscrowd"),
    "rotation": (
        "box rotations (written as the unrotated box)",
        "coalesce(TRY_CAST(json_extract(a.attributes, '$.rotation') AS DOUBLE), 0) <> 0",
    ),
    "occluded": ("occluded flags", "json_extract(a.attributes, '$.occluded')::VARCHAR = 'true'"),
    "attributes": (
        "object attributes",
        "a.annotation_type <> 'ATTRIBUTE' AND "
        f"len(list_filter(json_keys(a.attributes), lambda k: NOT list_contains({_DEFAULT_ATTRS}, k))) > 0",
    ),
    "polylines": ("polylines", f"{_SHAPE} = 'polyline'"),
    "points": ("point sets", f"{_SHAPE} = 'points'"),
    "ellipses": ("ellipses (their bounding box is kept)", f"{_SHAPE} = 'ellipse'"),
    "cuboids": ("cuboids", f"{_SHAPE} = 'cuboid'"),
    "keypoints": ("keypoints / skeletons", f"a.annotation_type = 'KEYPOINTS' AND coalesce({_SHAPE}, '') <> 'points'"),
    "tags": ("image-level labels (tags)", "a.annotation_type = 'LABEL'"),
    "image_attributes": ("image-level attribute records", "a.annotation_type = 'ATTRIBUTE'"),
    "scores": ("confidence scores", "a.score IS NOT NULL"),
    "extra": ("fields without a lake column (z_order, group_id, source, unknown keys)", f"len({_EXTRA_KEYS}) > 0"),
}


def _union(splits: Sequence[Split], name: str) -> str:
    return " UNION ALL ".join(f"SELECT * FROM {name}{k}" for k in range(len(splits)))  # noqa: S608


def report_losses(report: ConversionReport, splits: Sequence[Split], carried: Iterable[str],
                  extra_conditions: dict[str, tuple[str, str]] | None = None) -> dict[str, int]:
    """Add a loss for every feature present but not carried; returns the count of every feature checked."""
    carried = set(carried)
    checks = {k: v for k, v in FEATURES.items() if k not in carried}
    checks.update(extra_conditions or {})
    counts: dict[str, int] = {}
    if not checks or not splits:
        return counts
    con = duckdb.connect()
    try:
        for k, s in enumerate(splits):
            con.register(f"annotations{k}", s.tables.annotations)
            con.register(f"images{k}", s.tables.images)
        con.execute(f"CREATE VIEW a_all AS {_union(splits, 'annotations')}")  # noqa: S608 - fixed names
        con.execute(f"CREATE VIEW i_all AS {_union(splits, 'images')}")  # noqa: S608 - fixed names
        names = list(checks)
        totals = con.execute(  # one scan counts every feature
            "SELECT " + ", ".join(f"count_if({checks[w][1]})" for w in names)  # noqa: S608 - fixed SQL
            + " FROM a_all a LEFT JOIN i_all i USING (image_id)"
        ).fetchone()
        for what, n in zip(names, totals, strict=True):
            message, cond = checks[what]
            sql = f"FROM a_all a LEFT JOIN i_all i USING (image_id) WHERE {cond}"
            n = int(n or 0)
            counts[what] = n
            if n:
                rows = con.execute(
                    f"SELECT 'annotation ' || a.annotation_id || ' on ' || coalesce(i.file_name, '?') {sql} "  # noqa: S608
                    f"ORDER BY a.annotation_id LIMIT {MAX_EXAMPLES}"
                ).fetchall()
                report.lose(what, message, n, [r[0] for r in rows])
        if "metadata" not in carried:
            n = con.execute(f"SELECT count(*) FROM i_all WHERE {_METADATA}").fetchone()[0]  # noqa: S608
            rows = con.execute(f"SELECT file_name FROM i_all WHERE {_METADATA} LIMIT {MAX_EXAMPLES}").fetchall()  # noqa: S608
            report.lose("metadata", "image fields without a lake column", int(n), [f"image {r[0]}" for r in rows])
    finally:
        con.close()
    return counts
