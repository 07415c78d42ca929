"""Annotation-level insights: boxes per image, box size/shape per class with COCO size buckets,
object-centre heatmap, border-touching and tiny boxes, CVAT attribute distributions.

Boxes read the temp relations of `_box_relations` and group by category id; names are joined on the small
results (two ids may share a name), as the class filter: ids without a category are left out."""

from __future__ import annotations

import duckdb
import polars as pl

from dsgen_core.insights import derived
from dsgen_core.insights.attrs import Attrs, attribute_keys, attribute_sql, coded_counts_sql
from dsgen_core.insights.derived import BOX
from dsgen_core.insights.sqlkit import Measure, Ranges, frame, histograms, is_whole, rows, value_ranges

Tables = dict[str, pl.DataFrame]
MEASURES = [  # binned per class; area and aspect on log-spaced bins, their log10 read from the derived table
    Measure("width", "w"),
    Measure("height", "h"),
    Measure("area", "ar", log=True, x="la"),  # ar: w · h where > 0, else NULL
    Measure("aspect", "asp", log=True, x="lr"),  # asp: w / h where > 0, else NULL
]
SHAPE = "(SELECT * FROM box WHERE w IS NOT NULL)"  # rows with a box (the others only have an area)


def _box_relations(cur: duckdb.DuckDBPyConnection) -> None:
    """Temp relation `box`: the subset's rows of the derived table `ins_box` (annotations with a box or an
    area, their centre and border flag computed once per version), once per cursor. On the whole version
    a view of it (no join, nothing copied); on a part, one table of the part's rows (joined once, read often).
    No class filter: every query groups by category id, and ids without a category are dropped there."""
    if rows(cur, "SELECT count(*) FROM duckdb_views() WHERE temporary AND view_name = 'box'")[0][0]:
        return
    if is_whole(cur):
        cur.execute(f"CREATE TEMP VIEW box AS SELECT * FROM {BOX}")  # noqa: S608 - a constant name
    else:
        cur.execute(f"CREATE TEMP TABLE boxpart AS SELECT b.* FROM {BOX} b SEMI JOIN sel USING (image_id)")  # noqa: S608
        cur.execute("CREATE TEMP VIEW box AS SELECT * FROM boxpart")


def _known(cur: duckdb.DuckDBPyConnection) -> set[int]:
    return {int(r[0]) for r in rows(cur, "SELECT category_id FROM categories")}


def _named(names: pl.DataFrame, by_id: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Counts by category id → by category name (summed: ids sharing a name add up), ordered by `keys`."""
    counts = [c for c in by_id.columns if c not in keys and c != "category_id"]
    out = by_id.join(names.cast({"category_id": by_id.schema["category_id"]}), on="category_id")
    return out.group_by(keys).agg(pl.col(c).sum() for c in counts).sort(keys)


def box_ranges(cur: duckdb.DuckDBPyConnection, settings: dict) -> Ranges:
    """The range of each binned box measure over boxes of known classes (shared by every class, and by every
    subset when comparing); on the whole version, read from `ins_box_ranges` once it is built."""
    _box_relations(cur)
    if is_whole(cur) and derived.stored(cur, derived.BOX_RANGES):
        return {m: (lo, hi) for m, lo, hi in rows(cur, f"SELECT measure, lo, hi FROM {derived.BOX_RANGES}")}  # noqa: S608
    return value_ranges(cur, MEASURES, SHAPE, group_sql="category_id", groups=_known(cur))


def _whole_ranges(cur: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    got = box_ranges(cur, {})
    return pl.DataFrame({"measure": list(got), "lo": [v[0] for v in got.values()], "hi": [v[1] for v in got.values()]},
                        schema={"measure": pl.String, "lo": pl.Float64, "hi": pl.Float64})


derived.register_whole(derived.BOX_RANGES, _whole_ranges)


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
    grid = frame(cur, (  # per class and centre cell (NULL: no box, or the image has no size); one scan grouping
        # small columns, then the clamps and per-cell sums on the few groups
        "SELECT category_id, least($g - 1, greatest(0, fx))::INTEGER AS gx, least($g - 1, greatest(0, fy))::INTEGER "
        "AS gy, sum(instances)::BIGINT AS instances, coalesce(sum(n) FILTER (border), 0)::BIGINT AS touching_border, "
        "coalesce(sum(n) FILTER (bucket = 0), 0)::BIGINT AS small, coalesce(sum(n) FILTER (bucket = 1), 0)::BIGINT "
        "AS medium, coalesce(sum(n) FILTER (bucket = 2), 0)::BIGINT AS large, "
        "coalesce(sum(n) FILTER (bucket IS NOT NULL), 0)::BIGINT AS sized, "
        "coalesce(sum(n) FILTER (tiny), 0)::BIGINT AS tiny FROM ("
        "SELECT category_id, floor(cx * $g) AS fx, floor(cy * $g) AS fy, bucket, border, side < $tiny AS tiny, "
        "count(w) AS instances, count(*) AS n FROM box GROUP BY ALL) GROUP BY ALL"),
        {"g": int(settings["grid"]), "tiny": float(settings["tiny_px"])})
    known = names.select("category_id").unique().cast({"category_id": grid.schema["category_id"]})
    centres = (grid.join(known, on="category_id", how="semi").filter(pl.col("gx").is_not_null())
               .group_by("gx", "gy").agg(pl.col("instances").sum()).sort("gy", "gx"))
    counts = ["small", "medium", "large", "sized", "instances", "tiny", "touching_border"]
    per_class = _named(names, grid.group_by("category_id").agg(pl.col(c).sum() for c in counts), ["category"])
    sizes = per_class.filter(pl.col("sized") > 0).select("category", "small", "medium", "large")
    edges = per_class.filter(pl.col("instances") > 0).select("category", "instances", "touching_border", "tiny")
    return {"per_image": per_image, "shape": shape, "sizes": sizes, "centres": centres, "edges": edges}


def attributes(cur: duckdb.DuckDBPyConnection, settings: dict, attrs: Attrs) -> Tables:
    """Instances per (class, attribute, value); the top-N values of each attribute and class."""
    keys = attribute_keys(cur, attrs.columns)
    schema = {"category": pl.String, "attribute": pl.String, "value": pl.String, "instances": pl.Int64}
    if attrs.all_coded(keys):
        out = frame(cur, (
            f"WITH x AS ({coded_counts_sql(cur, attrs, keys)}) SELECT k, category, value, instances FROM x "  # noqa: S608
            "QUALIFY row_number() OVER (PARTITION BY k, category ORDER BY instances DESC, value) <= $top "
            "ORDER BY k, category, instances DESC, value"), {"top": int(settings["top"])})
        names = pl.DataFrame({"k": list(range(len(keys))), "attribute": keys},
                             schema={"k": out.schema["k"], "attribute": pl.String})
        return {"attributes": out.join(names, on="k", how="left").select(*schema).cast(schema)}  # type: ignore[arg-type]
    parts = []
    for key in keys:
        value_sql, params = attribute_sql(attrs.columns, key)
        part = frame(cur, (
            f"SELECT c.name AS category, {value_sql} AS value, count(*) AS instances "  # noqa: S608 - fixed SQL
            "FROM annotations a SEMI JOIN sel USING (image_id) JOIN categories c USING (category_id) "
            f"WHERE {value_sql} IS NOT NULL GROUP BY category, value "
            "QUALIFY row_number() OVER (PARTITION BY category ORDER BY instances DESC, value) <= $top "
            "ORDER BY category, instances DESC, value"), {**params, "top": int(settings["top"])})
        parts.append(part.with_columns(pl.lit(key).alias("attribute")).select("category", "attribute", "value",
                                                                               "instances"))
    return {"attributes": pl.concat(parts) if parts else pl.DataFrame(schema=schema)}
