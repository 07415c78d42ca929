"""Cross-analysis (tag / metadata / attribute × class contingency tables with Cramér's V, class
co-occurrence) and data issues (unannotated images, rare classes, duplicate file hashes)."""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl

from dsgen_core.insights import derived
from dsgen_core.insights.attrs import Attrs, attribute_keys, attribute_sql, coded_counts_sql
from dsgen_core.insights.curation_cross import curation_contingency
from dsgen_core.insights.sqlkit import count_columns, frame, is_whole, rows, subset_mask
from dsgen_core.insights.stats import chi2, cramers_v
from dsgen_core.search.engine import VersionEngine

Tables = dict[str, pl.DataFrame]
MAX_VARIABLES = 8
MASK_BITS = 62  # class presence bits per BIGINT mask (co-occurrence)
CONTINGENCY_SCHEMA = {"variable": pl.String, "value": pl.String, "category": pl.String, "instances": pl.Int64}
META_TEXT = ("CASE m.value_type WHEN 'boolean' THEN CAST(m.value_bool AS VARCHAR) WHEN 'number' THEN "
             "CAST(m.value_num AS VARCHAR) ELSE m.value_str END")  # over metadata rows `m` (or their groups)


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


def _contingency_by_counts(cur: duckdb.DuckDBPyConnection, ids: list[int], raw_sql: str, variable_sql: str,
                           value_sql: str, join_sql: str, params: dict[str, object], top: int,
                           order_sql: str = "variable") -> pl.DataFrame:
    """Instances per (variable, value, class) for image-level variables (tags, metadata), from the subset's
    per-image count columns: sums over images, not a join of the annotations. Rows are grouped by the raw
    columns `raw_sql` first and turned into (variable, value) text on the few groups. Each variable keeps
    its `top` most frequent values (ties by value), as `_contingency` does."""
    sums = ", ".join(f"sum(s.c_{k}::DOUBLE) AS c_{k}" for k in ids)  # whole numbers: exact, and faster than HUGEINT
    resum = ", ".join(f"sum(c_{k}) AS c_{k}" for k in ids)
    total = " + ".join(f"c_{k}" for k in ids)
    return frame(cur, (
        f"WITH r AS (SELECT {raw_sql}, {sums} FROM sel s {join_sql} GROUP BY ALL), "  # noqa: S608 - ids only
        f"w AS (SELECT {variable_sql} AS variable, {value_sql} AS value, {order_sql} AS ord, {resum} FROM r AS m "
        "GROUP BY ALL), "
        f"keep AS (SELECT variable, value FROM w WHERE {total} > 0 "
        f"QUALIFY row_number() OVER (PARTITION BY variable ORDER BY {total} DESC, value) <= $top), "
        "l AS (UNPIVOT (SELECT * FROM w SEMI JOIN keep USING (variable, value)) ON COLUMNS('^c_[0-9]+$') "
        "INTO NAME col VALUE n) "
        "SELECT variable, value, c.name AS category, sum(n)::BIGINT AS instances FROM l JOIN categories c "
        "ON c.category_id = CAST(substr(col, 3) AS BIGINT) GROUP BY ALL HAVING sum(n) > 0 "
        "ORDER BY any_value(ord), variable, value, category"), {**params, "top": int(top)}
    ).select(*CONTINGENCY_SCHEMA).cast(CONTINGENCY_SCHEMA)  # type: ignore[arg-type]


def _attribute_contingency(cur: duckdb.DuckDBPyConnection, attrs: Attrs, keys: list[str], top: int) -> pl.DataFrame:
    """Instances per (attribute, value, class) from the derived attribute codes in one statement, the top
    values of each attribute kept."""
    out = frame(cur, (
        f"WITH x AS ({coded_counts_sql(cur, attrs, keys)}), "  # noqa: S608 - integer column numbers only
        "keep AS (SELECT k, value FROM x GROUP BY k, value "
        "QUALIFY row_number() OVER (PARTITION BY k ORDER BY sum(instances) DESC, value) <= $top) "
        "SELECT k, value, category, instances FROM x SEMI JOIN keep USING (k, value) "
        "ORDER BY k, value, category"), {"top": int(top)})
    names = pl.DataFrame({"k": list(range(len(keys))), "variable": [f"attr.{k}" for k in keys]},
                         schema={"k": out.schema["k"], "variable": pl.String})
    return out.join(names, on="k", how="left").select(*CONTINGENCY_SCHEMA).cast(CONTINGENCY_SCHEMA)  # type: ignore[arg-type]


def cross(cur: duckdb.DuckDBPyConnection, settings: dict, attrs: Attrs, engine: VersionEngine | None = None) -> Tables:
    top = int(settings["top"])
    ids = count_columns(cur)
    chosen = list(settings.get("metadata_keys") or [])[:MAX_VARIABLES]
    if ids and engine is not None:
        subset = subset_mask(cur, len(engine.image_ids))
        parts = [curation_contingency(engine, subset, ids, chosen, MAX_VARIABLES, top)]
    elif ids:
        parts = [_contingency_by_counts(cur, ids, "t.tag", "'tag'", "tag", "JOIN tags t USING (image_id)", {}, top)]
        keys_sql = ("SELECT unnest($keys::VARCHAR[])" if chosen else "SELECT DISTINCT key FROM metadata "  # noqa: S608
                    f"SEMI JOIN sel USING (image_id) ORDER BY key LIMIT {MAX_VARIABLES}")
        parts.append(_contingency_by_counts(
            cur, ids, "m.key, m.value_type, m.value_str, m.value_num, m.value_bool", "'metadata.' || m.key",
            META_TEXT, f"JOIN metadata m USING (image_id) WHERE m.key IN ({keys_sql})",
            {"keys": chosen}, top, order_sql="list_position($keys::VARCHAR[], m.key)" if chosen else "m.key"))
    else:
        parts = [_contingency(cur, "tag", "t.tag", "JOIN tags t ON t.image_id = a.image_id", "TRUE", {}, top)]
        keys = chosen or [r[0] for r in rows(cur,
            "SELECT DISTINCT key FROM metadata SEMI JOIN sel USING (image_id) ORDER BY key")][:MAX_VARIABLES]
        for n, key in enumerate(keys):
            parts.append(_contingency(cur, f"metadata.{key}", META_TEXT, "JOIN metadata m ON m.image_id = a.image_id",
                                      f"m.key = $k{n}", {f"k{n}": key}, top))
    keys = (settings.get("attribute_keys") or attribute_keys(cur, attrs.columns))[:MAX_VARIABLES]
    if attrs.all_coded(keys):
        parts.append(_attribute_contingency(cur, attrs, keys, top))
    else:
        for key in keys:
            value_sql, params = attribute_sql(attrs.columns, key)
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
    if ids and is_whole(cur) and derived.stored(cur, derived.COOC):
        return frame(cur, f"SELECT category_a, category_b, images FROM {derived.COOC} ORDER BY _row")  # noqa: S608
    if ids:
        return _cooccurrence_from_counts(cur, ids)
    return frame(cur, (
        "WITH p AS (SELECT DISTINCT a.image_id, c.name FROM annotations a SEMI JOIN sel USING (image_id) "
        "JOIN categories c USING (category_id)) SELECT x.name AS category_a, y.name AS category_b, "
        "count(*) AS images FROM p x JOIN p y USING (image_id) GROUP BY ALL ORDER BY category_a, category_b"))


def _cooccurrence_from_counts(cur: duckdb.DuckDBPyConnection, ids: list[int]) -> pl.DataFrame:
    """Images per presence pattern of the classes (by name: ids sharing a name count an image once), then
    P'·diag(images)·P over the patterns: integer sums, exact in float64 (far below 2^53)."""
    by_name: dict[str, list[int]] = {}
    for cid, name in rows(cur, "SELECT category_id, name FROM categories ORDER BY category_id"):
        if int(cid) in ids:
            by_name.setdefault(name, []).append(int(cid))
    names = sorted(by_name)
    if not names:
        return pl.DataFrame(schema={"category_a": pl.String, "category_b": pl.String, "images": pl.Int64})
    chunks = [names[i:i + MASK_BITS] for i in range(0, len(names), MASK_BITS)]
    masks = ", ".join("(" + " | ".join(  # one BIGINT bit mask of present classes per chunk of names: cheap to group
        "CASE WHEN " + " OR ".join(f"c_{k} > 0" for k in by_name[n]) + f" THEN {1 << j} ELSE 0 END::BIGINT"
        for j, n in enumerate(chunk)) + f") AS m{c}" for c, chunk in enumerate(chunks))
    patterns = cur.sql(f"SELECT {masks}, count(*) AS n FROM sel GROUP BY ALL").fetchnumpy()  # noqa: S608 - ids only
    p = np.column_stack([(np.asarray(patterns[f"m{c}"], dtype=np.int64)[:, None] >> np.arange(len(chunk))) & 1
                         for c, chunk in enumerate(chunks)]).astype(float)
    weights = np.asarray(patterns["n"], dtype=float)
    both = np.rint((p * weights[:, None]).T @ p).astype(np.int64) if len(weights) else np.zeros((len(names),) * 2,
                                                                                                   dtype=np.int64)
    a, b = np.nonzero(both)
    return pl.DataFrame({"category_a": [names[i] for i in a], "category_b": [names[j] for j in b],
                         "images": both[a, b]},
                        schema={"category_a": pl.String, "category_b": pl.String, "images": pl.Int64})


def _whole_cooccurrence(cur: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    ids = count_columns(cur)
    return _cooccurrence_from_counts(cur, ids) if ids else pl.DataFrame(
        schema={"category_a": pl.String, "category_b": pl.String, "images": pl.Int64})


derived.register_whole(derived.COOC, _whole_cooccurrence)


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
