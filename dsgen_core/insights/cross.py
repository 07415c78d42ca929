"""Cross-analysis (tag / metadata / attribute × class contingency tables with Cramér's V, class
co-occurrence) and data issues (unannotated images, rare classes, duplicate file hashes)."""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl

from dsgen_core.insights.geometry import attribute_keys, attribute_sql
from dsgen_core.insights.sqlkit import count_columns, frame, rows
from dsgen_core.insights.stats import chi2, cramers_v

Tables = dict[str, pl.DataFrame]
MAX_VARIABLES = 8
CONTINGENCY_SCHEMA = {"variable": pl.String, "value": pl.String, "category": pl.String, "instances": pl.Int64}
META_TEXT = ("CASE m.value_type WHEN 'boolean' THEN CAST(m.value_bool AS VARCHAR) WHEN 'number' THEN "
             "CAST(m.value_num AS VARCHAR) ELSE m.value_str END")


def _contingency(cur: duckdb.DuckDBPyConnection, variable: str, value_sql: str, join_sql: str, where_sql: str,
                 params: dict[str, object], top: int) -> pl.DataFrame:
    """Instances per (value, class) over the subset, keeping the `top` most frequent values."""
    out = frame(cur, (
        f"WITH x AS (SELECT {value_sql} AS value, c.name AS category FROM annotations a "  # noqa: S608 - fixed SQL
        f"SEMI JOIN sel USING (image_id) JOIN categories c USING (category_id) {join_sql} WHERE {where_sql}), "
        "keep AS (SELECT value FROM x GROUP BY value ORDER BY count(*) DESC, value LIMIT $top) "
        "SELECT value, category, count(*) AS instances FROM x SEMI JOIN keep USING (value) "
        "GROUP BY ALL ORDER BY value, category"), {**params, "top": int(top)})
    return out.with_columns(pl.lit(variable).alias("variable")).select(*CONTINGENCY_SCHEMA)


def cross(cur: duckdb.DuckDBPyConnection, settings: dict, attr_columns: dict[str, int]) -> Tables:
    top = int(settings["top"])
    parts = [_contingency(cur, "tag", "t.tag", "JOIN tags t ON t.image_id = a.image_id", "TRUE", {}, top)]
    keys = settings.get("metadata_keys") or [r[0] for r in rows(cur,
        "SELECT DISTINCT key FROM metadata SEMI JOIN sel USING (image_id) ORDER BY key")]
    for n, key in enumerate(keys[:MAX_VARIABLES]):
        parts.append(_contingency(cur, f"metadata.{key}", META_TEXT,
                                  "JOIN metadata m ON m.image_id = a.image_id", f"m.key = $k{n}", {f"k{n}": key}, top))
    attrs = settings.get("attribute_keys") or attribute_keys(cur, attr_columns)
    for key in attrs[:MAX_VARIABLES]:
        value_sql, params = attribute_sql(attr_columns, key)
        parts.append(_contingency(cur, f"attr.{key}", value_sql, "", f"{value_sql} IS NOT NULL", params, top))
    table = pl.concat([p for p in parts if p.height] or [pl.DataFrame(schema=CONTINGENCY_SCHEMA)])
    return {"contingency": table, "association": association(table), "cooccurrence": cooccurrence(cur)}


def association(table: pl.DataFrame) -> pl.DataFrame:
    """Chi-squared and Cramér's V per variable of a long contingency table."""
    rows = []
    for variable in table["variable"].unique(maintain_order=True).to_list():
        part = table.filter(pl.col("variable") == variable)
        wide = part.pivot(on="category", index="value", values="instances").fill_null(0)
        counts = wide.drop("value").to_numpy().astype(float) if wide.width > 1 else np.zeros((0, 0))
        value, dof, n = chi2(counts)
        rows.append({"variable": variable, "values": wide.height, "classes": wide.width - 1, "instances": n,
                     "chi2": value, "dof": dof, "cramers_v": cramers_v(counts)})
    schema = {"variable": pl.String, "values": pl.Int64, "classes": pl.Int64, "instances": pl.Int64,
              "chi2": pl.Float64, "dof": pl.Int64, "cramers_v": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


def cooccurrence(cur: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Images holding both classes (the diagonal: images holding the class)."""
    ids = count_columns(cur)
    unique_names = rows(cur, "SELECT count(*) = count(DISTINCT name) FROM categories")[0][0]
    if ids and unique_names:  # by name: two ids sharing a name must not count an image twice
        return _cooccurrence_from_counts(cur, ids)
    return frame(cur, (
        "WITH p AS (SELECT DISTINCT a.image_id, c.name FROM annotations a SEMI JOIN sel USING (image_id) "
        "JOIN categories c USING (category_id)) SELECT x.name AS category_a, y.name AS category_b, "
        "count(*) AS images FROM p x JOIN p y USING (image_id) GROUP BY ALL ORDER BY category_a, category_b"))


def _cooccurrence_from_counts(cur: duckdb.DuckDBPyConnection, ids: list[int]) -> pl.DataFrame:
    """One scan of the count columns: an aggregate per class pair (names from integer ids only)."""
    pairs = [(a, b) for n, a in enumerate(ids) for b in ids[n:]]
    aggs = ", ".join(f"count(*) FILTER (WHERE c_{a} > 0 AND c_{b} > 0)" for a, b in pairs)
    values = rows(cur, f"SELECT {aggs} FROM sel")[0]  # noqa: S608 - integer ids only
    names = dict(rows(cur, "SELECT category_id, name FROM categories"))
    out: dict[tuple[str, str], int] = {}
    for (a, b), n in zip(pairs, values, strict=True):
        if n:
            for x, y in {(names[a], names[b]), (names[b], names[a])}:
                out[(x, y)] = out.get((x, y), 0) + int(n)
    data = sorted(out.items())
    return pl.DataFrame({"category_a": [k[0] for k, _ in data], "category_b": [k[1] for k, _ in data],
                         "images": [v for _, v in data]},
                        schema={"category_a": pl.String, "category_b": pl.String, "images": pl.Int64})


def issues(cur: duckdb.DuckDBPyConnection, settings: dict) -> Tables:
    """Images without annotations, classes below `min_instances`, files sharing a sha256."""
    unannotated = frame(cur, "SELECT i.image_id, i.file_name FROM images i SEMI JOIN sel USING (image_id) "
                             "WHERE i.num_annotations = 0 ORDER BY i.image_id")
    rare = frame(cur, (
        "SELECT c.name AS category, count(a.annotation_id) AS instances FROM categories c LEFT JOIN "
        "(SELECT a.annotation_id, a.category_id FROM annotations a SEMI JOIN sel USING (image_id)) a "
        "USING (category_id) GROUP BY ALL HAVING count(a.annotation_id) < $n ORDER BY instances, category"),
        {"n": int(settings["min_instances"])})
    duplicates = frame(cur, (
        "SELECT i.sha256, count(*) AS images, string_agg(i.file_name, '; ' ORDER BY i.file_name) AS file_names "
        "FROM images i SEMI JOIN sel USING (image_id) WHERE i.sha256 IS NOT NULL GROUP BY i.sha256 "
        "HAVING count(*) > 1 ORDER BY images DESC, i.sha256"))
    summary = pl.DataFrame({
        "issue": ["images_without_annotations", "classes_below_min_instances", "duplicate_hash_groups",
                  "images_in_duplicate_groups"],
        "count": [unannotated.height, rare.height, duplicates.height,
                  int(duplicates["images"].sum()) if duplicates.height else 0],
    }, schema={"issue": pl.String, "count": pl.Int64})
    return {"summary": summary, "unannotated": unannotated.head(int(settings["examples"])), "rare_classes": rare,
            "duplicates": duplicates}
