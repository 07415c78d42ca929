"""Annotation attributes for the insights: which keys, their SQL, and instances per (key, class, value)
counted from the derived integer codes (`ins_attr`) when the engine has them, else from the text."""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from dsgen_core.insights.derived import ATTR, ATTR_JOINT, ATTR_VALUES
from dsgen_core.insights.sqlkit import is_whole, rows


@dataclass(frozen=True)
class Attrs:
    """The engine's extracted attribute columns (key → n of at_<n>) and how they can be counted."""

    columns: dict[str, int] = field(default_factory=dict)
    coded: bool = False  # ins_attr holds a code column v_<n> for every extracted column
    joint: bool = False  # few (class, codes…) combinations: count all keys in one grouping

    def all_coded(self, keys: list[str]) -> bool:
        return self.coded and bool(keys) and all(k in self.columns for k in keys)


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


def coded_counts_sql(cur: duckdb.DuckDBPyConnection, attrs: Attrs, keys: list[str]) -> str:
    """SQL of instances per (k = position of the key in `keys`, category name, value text) over the subset,
    grouping integer codes and turning them into names and text on the few groups only (ids sharing a
    name add up; ids without a category are left out). Only integers enter the SQL text."""
    cols = [int(attrs.columns[k]) for k in keys]
    codes = ", ".join(f"v_{n}" for n in cols)
    whole = is_whole(cur)
    part = ATTR if whole else f"{ATTR} SEMI JOIN sel USING (image_id)"
    if attrs.joint and whole:  # the whole version's combinations were counted when the codes were built
        head, src, agg = "", ATTR_JOINT, "sum(n)"
    elif attrs.joint:  # one grouping of all codes, then each key's marginal from the few combinations
        head = f"WITH j AS MATERIALIZED (SELECT category_id, {codes}, count(*) AS n FROM {part} GROUP BY ALL) "  # noqa: S608
        src, agg = "j", "sum(n)"
    elif whole:
        head, src, agg = "", ATTR, "count(*)"
    else:  # the part's rows once, read by every key
        head, src, agg = f"WITH j AS MATERIALIZED (SELECT category_id, {codes} FROM {part}) ", "j", "count(*)"  # noqa: S608
    branches = " UNION ALL ".join(
        f"SELECT {k} AS k, {n} AS col, category_id, v_{n} AS code, {agg} AS n FROM {src} "  # noqa: S608 - integers
        f"WHERE v_{n} IS NOT NULL GROUP BY ALL" for k, n in enumerate(cols))
    return (f"{head}SELECT g.k, c.name AS category, d.value, sum(g.n)::BIGINT AS instances FROM ({branches}) g "  # noqa: S608
            f"JOIN categories c USING (category_id) JOIN {ATTR_VALUES} d ON d.n = g.col AND d.code = g.code "
            "GROUP BY ALL")
