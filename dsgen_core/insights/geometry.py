"""Annotation-level insights: boxes per image, box size/shape per class with COCO size buckets,
object-centre heatmap, border-touching and tiny boxes, CVAT attribute distributions."""

from __future__ import annotations

import duckdb
import polars as pl

from dsgen_core.insights.sqlkit import frame, histogram, rows

Tables = dict[str, pl.DataFrame]
SMALL, MEDIUM = 32**2, 96**2  # COCO's area thresholds
BOXES = "annotations a JOIN sel s USING (image_id) JOIN categories c USING (category_id) WHERE a.bbox_w IS NOT NULL"
MEASURES = {  # name -> (SQL over a, log-spaced bins)
    "width": ("a.bbox_w", False),
    "height": ("a.bbox_h", False),
    "area": ("a.bbox_w * a.bbox_h", True),
    "aspect": ("a.bbox_w / NULLIF(a.bbox_h, 0)", True),
}


def boxes(cur: duckdb.DuckDBPyConnection, settings: dict) -> Tables:
    """Per-image counts, per-class box shape histograms, size buckets, centres, border and tiny boxes."""
    per_image = frame(cur, "SELECT i.num_annotations AS boxes, count(*) AS images FROM images i "
                           "SEMI JOIN sel USING (image_id) GROUP BY ALL ORDER BY boxes")
    shapes = []
    for name, (sql, log) in MEASURES.items():
        h = histogram(cur, sql, BOXES, settings["bins"], log=log, group_sql="c.name", count_name="instances")
        shapes.append(h.rename({"group": "category"}).with_columns(pl.lit(name).alias("measure"))
                      .select("measure", "category", "bin", "bin_start", "bin_end", "last", "instances"))
    sizes = frame(cur, (
        "SELECT c.name AS category, count(*) FILTER (WHERE x < $small) AS small, "
        "count(*) FILTER (WHERE x >= $small AND x < $medium) AS medium, count(*) FILTER (WHERE x >= $medium) AS large "
        "FROM (SELECT a.category_id, coalesce(a.area, a.bbox_w * a.bbox_h) AS x FROM annotations a "
        "SEMI JOIN sel USING (image_id) WHERE coalesce(a.area, a.bbox_w * a.bbox_h) IS NOT NULL) a "
        "JOIN categories c USING (category_id) GROUP BY ALL ORDER BY category"), {"small": SMALL, "medium": MEDIUM})
    grid = int(settings["grid"])
    centres = frame(cur, (
        "SELECT least($g - 1, greatest(0, floor((a.bbox_x + a.bbox_w / 2) / s.width * $g)))::INTEGER AS gx, "  # noqa: S608
        "least($g - 1, greatest(0, floor((a.bbox_y + a.bbox_h / 2) / s.height * $g)))::INTEGER AS gy, "
        f"count(*) AS instances FROM {BOXES} AND s.width > 0 AND s.height > 0 GROUP BY ALL ORDER BY gy, gx"),
        {"g": grid})
    edges = frame(cur, (
        "SELECT c.name AS category, count(*) AS instances, count(*) FILTER (WHERE a.bbox_x <= 0 OR a.bbox_y <= 0 "  # noqa: S608
        "OR a.bbox_x + a.bbox_w >= s.width OR a.bbox_y + a.bbox_h >= s.height) AS touching_border, "
        f"count(*) FILTER (WHERE least(a.bbox_w, a.bbox_h) < $tiny) AS tiny FROM {BOXES} "
        "GROUP BY ALL ORDER BY category"), {"tiny": float(settings["tiny_px"])})
    return {"per_image": per_image, "shape": pl.concat(shapes) if shapes else pl.DataFrame(), "sizes": sizes,
            "centres": centres, "edges": edges}


def attribute_sql(attr_columns: dict[str, int], key: str) -> tuple[str, dict[str, object]]:
    """Text SQL of an attribute of annotation `a`: the engine's extracted column, or a JSON path."""
    from dsgen_core.query.compiler import json_pointer

    n = attr_columns.get(key)
    if n is not None:
        return f"a.at_{int(n)}", {}
    return "json_extract_string(a.attributes, $attr_path)", {"attr_path": json_pointer(key)}


def attribute_keys(cur: duckdb.DuckDBPyConnection, attr_columns: dict[str, int]) -> list[str]:
    """Attribute keys in use: the engine extracted the common ones; the rest are found in the JSON."""
    if attr_columns:
        return sorted(attr_columns)
    try:
        return [r[0] for r in rows(cur,
            "SELECT DISTINCT unnest(json_keys(attributes)) AS k FROM annotations WHERE attributes IS NOT NULL "
            "ORDER BY k")]
    except duckdb.Error:
        return []


def attributes(cur: duckdb.DuckDBPyConnection, settings: dict, attr_columns: dict[str, int]) -> Tables:
    """Instances per (class, attribute, value); the top-N values of each attribute and class."""
    parts = []
    for key in attribute_keys(cur, attr_columns):
        value_sql, params = attribute_sql(attr_columns, key)
        part = frame(cur, (
            f"SELECT c.name AS category, {value_sql} AS value, count(*) AS instances "  # noqa: S608 - fixed SQL
            "FROM annotations a SEMI JOIN sel USING (image_id) JOIN categories c USING (category_id) "
            f"WHERE {value_sql} IS NOT NULL GROUP BY category, value "
            "QUALIFY row_number() OVER (PARTITION BY category ORDER BY instances DESC, value) <= $top "
            "ORDER BY category, instances DESC, value"), {**params, "top": int(settings["top"])})
        parts.append(part.with_columns(pl.lit(key).alias("attribute")).select("category", "attribute", "value",
                                                                               "instances"))
    schema = {"category": pl.String, "attribute": pl.String, "value": pl.String, "instances": pl.Int64}
    return {"attributes": pl.concat(parts) if parts else pl.DataFrame(schema=schema)}
