"""Annotation-level insights: boxes per image, box size/shape per class with COCO size buckets,
object-centre heatmap, border-touching and tiny boxes, CVAT attribute distributions.

Boxes read the temp relations of `_box_relations` and group by category id; names are joined on the small
results (two ids may share a name), as the class filter: ids without a category are left out."""

from __future__ import annotations

import duckdb
import polars as pl

from dsgen_core.insights.sqlkit import Measure, Ranges, frame, histograms, rows, value_ranges

Tables = dict[str, pl.DataFrame]
SMALL, MEDIUM = 32**2, 96**2  # COCO's area thresholds
MEASURES = [  # binned per class; area and aspect on log-spaced bins
    Measure("width", "w"),
    Measure("height", "h"),
    Measure("area", "w * h", log=True),
    Measure("aspect", "w / NULLIF(h, 0)", log=True),
]
SHAPE = "(SELECT * FROM box WHERE w IS NOT NULL)"  # rows with a box (the others only have an area)
COLUMNS = ("a.category_id, a.bbox_x AS x, a.bbox_y AS y, a.bbox_w AS w, a.bbox_h AS h, "
           "coalesce(a.area, a.bbox_w * a.bbox_h) AS size")


def _box_relations(cur: duckdb.DuckDBPyConnection) -> None:
    """Temp relations `box` (the subset's annotations with a box or an area) and `boxdim` (the same with
    their image's width and height as iw, ih), once per cursor. On the whole version both are views of
    the annotations (nothing to copy); on a part, one table of the part's rows (joined once, read often).
    No class filter: every query groups by category id, and ids without a category are dropped there."""
    if rows(cur, "SELECT count(*) FROM duckdb_views() WHERE temporary AND view_name = 'box'")[0][0]:
        return
    whole = rows(cur, "SELECT (SELECT count(*) FROM sel) = (SELECT count(*) FROM images)")[0][0]
    dims = (f"SELECT {COLUMNS}, s.width AS iw, s.height AS ih FROM annotations a JOIN sel s USING (image_id) "  # noqa: S608
            "WHERE a.bbox_w IS NOT NULL OR a.area IS NOT NULL")
    if whole:
        cur.execute(f"CREATE TEMP VIEW boxdim AS {dims}")
        cur.execute(f"CREATE TEMP VIEW box AS SELECT {COLUMNS} FROM annotations a "  # noqa: S608 - fixed SQL
                    "WHERE a.bbox_w IS NOT NULL OR a.area IS NOT NULL")
    else:
        cur.execute(f"CREATE TEMP TABLE boxdim AS {dims}")
        cur.execute("CREATE TEMP VIEW box AS SELECT * FROM boxdim")


def _known(cur: duckdb.DuckDBPyConnection) -> set[int]:
    return {int(r[0]) for r in rows(cur, "SELECT category_id FROM categories")}


def _named(names: pl.DataFrame, by_id: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Counts by category id → by category name (summed: ids sharing a name add up), ordered by `keys`."""
    counts = [c for c in by_id.columns if c not in keys and c != "category_id"]
    out = by_id.join(names.cast({"category_id": by_id.schema["category_id"]}), on="category_id")
    return out.group_by(keys).agg(pl.col(c).sum() for c in counts).sort(keys)


def box_ranges(cur: duckdb.DuckDBPyConnection, settings: dict) -> Ranges:
    """The range of each binned box measure over boxes of known classes (shared by every class, and by every
    subset when comparing)."""
    _box_relations(cur)
    return value_ranges(cur, MEASURES, SHAPE, group_sql="category_id", groups=_known(cur))


def boxes(cur: duckdb.DuckDBPyConnection, settings: dict, ranges: Ranges | None = None) -> Tables:
    """Per-image counts, per-class box shape histograms, size buckets, centres, border and tiny boxes."""
    per_image = frame(cur, "SELECT num_annotations AS boxes, count(*) AS images FROM sel GROUP BY ALL ORDER BY boxes")
    if ranges is None:
        ranges = box_ranges(cur, settings)
    hist = histograms(cur, MEASURES, SHAPE, settings["bins"], ranges, group_sql="category_id")
    keys = ["measure", "category", "bin", "bin_start", "bin_end", "last"]
    names = frame(cur, "SELECT category_id, name AS category FROM categories")
    shape = _named(names, hist.rename({"group": "category_id", "count": "instances"}), keys).with_columns(
        pl.col("measure").cast(pl.Enum([m.name for m in MEASURES])).alias("_order")
    ).sort("_order", "category", "bin").drop("_order")
    per_class = frame(cur, (
        "SELECT category_id, count(*) FILTER (size < $small) AS small, "
        "count(*) FILTER (size >= $small AND size < $medium) AS medium, count(*) FILTER (size >= $medium) AS large, "
        "count(size) AS sized, count(w) AS instances, count(*) FILTER (w IS NOT NULL AND least(w, h) < $tiny) AS tiny "
        "FROM box GROUP BY ALL"), {"small": SMALL, "medium": MEDIUM, "tiny": float(settings["tiny_px"])})
    cells = frame(cur, (  # centre cells (NULL when the image has no size) and border boxes, per class
        "SELECT category_id, CASE WHEN iw > 0 AND ih > 0 THEN least($g - 1, greatest(0, floor((x + w / 2) / iw * $g))) "
        "END::INTEGER AS gx, CASE WHEN iw > 0 AND ih > 0 THEN least($g - 1, greatest(0, floor((y + h / 2) / ih * $g))) "
        "END::INTEGER AS gy, count(*) AS instances, "
        "count(*) FILTER (x <= 0 OR y <= 0 OR x + w >= iw OR y + h >= ih) AS touching_border "
        "FROM boxdim WHERE w IS NOT NULL GROUP BY ALL"), {"g": int(settings["grid"])})
    cells = cells.join(names.select("category_id").unique().cast({"category_id": cells.schema["category_id"]}),
                       on="category_id", how="semi")
    centres = (cells.filter(pl.col("gx").is_not_null()).group_by("gx", "gy").agg(pl.col("instances").sum())
               .sort("gy", "gx"))
    border = cells.group_by("category_id").agg(pl.col("touching_border").sum())
    per_class = _named(names, per_class.join(border, on="category_id", how="left").fill_null(0), ["category"])
    sizes = per_class.filter(pl.col("sized") > 0).select("category", "small", "medium", "large")
    edges = per_class.filter(pl.col("instances") > 0).select("category", "instances", "touching_border", "tiny")
    return {"per_image": per_image, "shape": shape, "sizes": sizes, "centres": centres, "edges": edges}


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
