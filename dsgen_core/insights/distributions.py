"""Image-level insights: class distribution, tags, metadata coverage and values, resolution and file sizes."""

from __future__ import annotations

import duckdb
import polars as pl

from dsgen_core.insights.sqlkit import Measure, Ranges, count_columns, frame, histograms, rows, value_ranges
from dsgen_core.insights.stats import imbalance_ratio

Tables = dict[str, pl.DataFrame]
META_NUM = "(SELECT key, value_num FROM metadata SEMI JOIN sel USING (image_id) WHERE value_type = 'number')"
RESOLUTION = [Measure("width", "width"), Measure("height", "height"), Measure("file_size", "size_bytes")]


def subset_size(cur: duckdb.DuckDBPyConnection) -> int:
    return int(rows(cur, "SELECT count(*) FROM sel")[0][0])


def classes(cur: duckdb.DuckDBPyConnection, settings: dict) -> Tables:
    """Images and instances per class (every category, zero rows included) and the imbalance ratio."""
    per_class = _per_class_from_counts(cur) if count_columns(cur) else frame(cur, (
        "SELECT c.category_id, c.name AS category, c.supercategory, count(DISTINCT a.image_id) AS images, "
        "count(a.annotation_id) AS instances FROM categories c LEFT JOIN "
        "(SELECT a.annotation_id, a.image_id, a.category_id FROM annotations a SEMI JOIN sel USING (image_id)) a "
        "USING (category_id) GROUP BY ALL ORDER BY instances DESC, category"))
    total = int(per_class["instances"].sum()) if per_class.height else 0
    per_class = per_class.with_columns(
        (pl.col("instances") / total if total else pl.lit(0.0)).cast(pl.Float64).alias("instance_share"))
    images, annotated, anns = rows(cur,
        "SELECT (SELECT count(*) FROM sel), (SELECT count(DISTINCT image_id) FROM annotations SEMI JOIN sel "
        "USING (image_id)), (SELECT count(*) FROM annotations SEMI JOIN sel USING (image_id))")[0]
    counts = per_class["instances"].to_list()
    summary = pl.DataFrame({
        "images": [int(images)], "annotated_images": [int(annotated)], "annotations": [int(anns)],
        "classes_present": [sum(1 for c in counts if c > 0)], "classes_total": [len(counts)],
        "imbalance_ratio": [imbalance_ratio(counts)],
    }, schema={"images": pl.Int64, "annotated_images": pl.Int64, "annotations": pl.Int64,
               "classes_present": pl.Int64, "classes_total": pl.Int64, "imbalance_ratio": pl.Float64})
    return {"classes": per_class, "summary": summary}


def _per_class_from_counts(cur: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Images and instances per class in one scan of the subset's count columns (names from integer ids)."""
    ids = count_columns(cur)
    aggs = ", ".join(f"count(*) FILTER (WHERE c_{k} > 0), coalesce(sum(c_{k}), 0)" for k in ids)
    values = rows(cur, f"SELECT {aggs} FROM sel")[0]  # noqa: S608 - integer ids only
    got = {k: (int(values[2 * n]), int(values[2 * n + 1])) for n, k in enumerate(ids)}
    cats = frame(cur, "SELECT category_id, name AS category, supercategory FROM categories ORDER BY category_id")
    out = cats.with_columns(
        pl.Series("images", [got.get(k, (0, 0))[0] for k in cats["category_id"].to_list()], dtype=pl.Int64),
        pl.Series("instances", [got.get(k, (0, 0))[1] for k in cats["category_id"].to_list()], dtype=pl.Int64))
    return out.sort(["instances", "category"], descending=[True, False])


def tags(cur: duckdb.DuckDBPyConnection, settings: dict) -> Tables:
    n = subset_size(cur)
    out = frame(cur, "SELECT tag, count(DISTINCT image_id) AS images FROM tags SEMI JOIN sel USING (image_id) "
                     "GROUP BY tag ORDER BY images DESC, tag")
    return {"tags": out.with_columns((pl.col("images") / max(n, 1)).cast(pl.Float64).alias("share"))}


def metadata(cur: duckdb.DuckDBPyConnection, settings: dict, ranges: Ranges | None = None) -> Tables:
    """Key coverage; top-N values of text/boolean keys; equal-width histograms of numeric keys."""
    n = subset_size(cur)
    coverage = frame(cur, "SELECT key, value_type, count(DISTINCT image_id) AS images FROM metadata "
                          "SEMI JOIN sel USING (image_id) GROUP BY key, value_type ORDER BY key, value_type")
    coverage = coverage.with_columns((pl.col("images") / max(n, 1)).cast(pl.Float64).alias("coverage"))
    values = frame(cur, (
        "SELECT key, value_type, CASE value_type WHEN 'boolean' THEN CAST(value_bool AS VARCHAR) "
        "ELSE value_str END AS value, count(*) AS images FROM metadata SEMI JOIN sel USING (image_id) "
        "WHERE value_type IN ('string', 'boolean') GROUP BY key, value_type, value "
        "QUALIFY row_number() OVER (PARTITION BY key ORDER BY images DESC, value) <= $top "
        "ORDER BY key, images DESC, value"), {"top": int(settings["top"])})
    measures = _numeric_measures(cur)
    if ranges is None:
        ranges = value_ranges(cur, measures, META_NUM)
    numeric = histograms(cur, measures, META_NUM, settings["bins"], ranges).select(
        pl.col("measure").alias("key"), "bin", "bin_start", "bin_end", "last", pl.col("count").alias("images"))
    return {"coverage": coverage, "values": values, "numeric": numeric}


def _numeric_measures(cur: duckdb.DuckDBPyConnection) -> list[Measure]:
    """One binned measure per numeric metadata key of the subset (keys are parameters, never SQL text)."""
    keys = [r[0] for r in rows(cur, "SELECT DISTINCT key FROM metadata SEMI JOIN sel USING (image_id) "
                                    "WHERE value_type = 'number' ORDER BY key")]
    return [Measure(k, "value_num", where=f"key = $k{n}", params={f"k{n}": k}) for n, k in enumerate(keys)]


def metadata_ranges(cur: duckdb.DuckDBPyConnection, settings: dict) -> Ranges:
    return value_ranges(cur, _numeric_measures(cur), META_NUM)


def resolution_ranges(cur: duckdb.DuckDBPyConnection, settings: dict) -> Ranges:
    return value_ranges(cur, RESOLUTION, "sel")


def resolution(cur: duckdb.DuckDBPyConnection, settings: dict, ranges: Ranges | None = None) -> Tables:
    """Width and height histograms, the (width, height) heatmap, aspect ratios and file sizes."""
    pairs = frame(cur, "SELECT width, height, count(*) AS images FROM sel WHERE width IS NOT NULL "
                       "GROUP BY ALL ORDER BY images DESC, width, height LIMIT 400")
    aspect = frame(cur, "SELECT round(width / height, 2)::DOUBLE AS aspect, count(*) AS images FROM sel "
                        "WHERE height > 0 GROUP BY ALL ORDER BY aspect")
    if ranges is None:
        ranges = value_ranges(cur, RESOLUTION, "sel")
    hist = histograms(cur, RESOLUTION, "sel", settings["bins"], ranges).rename({"count": "images"})
    cols = ["bin", "bin_start", "bin_end", "last", "images"]
    width, height, sizes = (hist.filter(pl.col("measure") == m.name).select(cols) for m in RESOLUTION)
    return {"width": width, "height": height, "resolution": pairs, "aspect": aspect, "file_size": sizes}
