"""Image-level insights: class distribution, tags, metadata coverage and values, resolution and file sizes."""

from __future__ import annotations

import duckdb
import polars as pl

from dsgen_core.insights.sqlkit import count_columns, frame, histogram, rows
from dsgen_core.insights.stats import imbalance_ratio

Tables = dict[str, pl.DataFrame]


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


def metadata(cur: duckdb.DuckDBPyConnection, settings: dict) -> Tables:
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
    numeric_keys = [r[0] for r in rows(cur,
        "SELECT DISTINCT key FROM metadata SEMI JOIN sel USING (image_id) WHERE value_type = 'number' "
        "ORDER BY key")]
    parts = []
    for key in numeric_keys:
        h = _numeric_hist(cur, key, settings["bins"])
        parts.append(h.with_columns(pl.lit(key).alias("key")).select("key", "bin", "bin_start", "bin_end", "last", "images"))
    numeric = pl.concat(parts) if parts else pl.DataFrame(
        schema={"key": pl.String, "bin": pl.Int32, "bin_start": pl.Float64, "bin_end": pl.Float64, "last": pl.Boolean,
        "images": pl.Int64})
    return {"coverage": coverage, "values": values, "numeric": numeric}


def _numeric_hist(cur: duckdb.DuckDBPyConnection, key: str, bins: int) -> pl.DataFrame:
    cur.execute("CREATE OR REPLACE TEMP TABLE meta_num AS SELECT value_num FROM metadata SEMI JOIN sel "
                "USING (image_id) WHERE key = $key AND value_type = 'number'", {"key": key})
    try:
        return histogram(cur, "value_num", "meta_num WHERE TRUE", bins, count_name="images")
    finally:
        cur.execute("DROP TABLE IF EXISTS meta_num")


def resolution(cur: duckdb.DuckDBPyConnection, settings: dict) -> Tables:
    """Width and height histograms, the (width, height) heatmap, aspect ratios and file sizes."""
    bins = settings["bins"]
    pairs = frame(cur, "SELECT width, height, count(*) AS images FROM sel WHERE width IS NOT NULL "
                       "GROUP BY ALL ORDER BY images DESC, width, height LIMIT 400")
    aspect = frame(cur, "SELECT round(width / height, 2)::DOUBLE AS aspect, count(*) AS images FROM sel "
                        "WHERE height > 0 GROUP BY ALL ORDER BY aspect")
    sizes = histogram(cur, "i.size_bytes", "images i SEMI JOIN sel USING (image_id) WHERE TRUE", bins,
                      count_name="images")
    return {
        "width": histogram(cur, "width", "sel WHERE TRUE", bins, count_name="images"),
        "height": histogram(cur, "height", "sel WHERE TRUE", bins, count_name="images"),
        "resolution": pairs, "aspect": aspect, "file_size": sizes,
    }
