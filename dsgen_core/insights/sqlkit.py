"""Small SQL helpers shared by the insight computations: a per-call cursor holding the subset, histograms."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import polars as pl

from dsgen_core.search.engine import VersionEngine, used_params


@contextmanager
def subset_cursor(engine: VersionEngine, where: str, params: dict[str, object]) -> Iterator[duckdb.DuckDBPyConnection]:
    """A private connection on the engine's database with temp table `sel` (the subset's images):
    temp tables are per connection, so parallel requests never see each other's subset."""
    cur = engine.cursor().cursor()
    # the engine's per-class count columns (c_<category id>) come along: class statistics read them
    counts = ", COLUMNS('^c_[0-9]+$')" if engine.schema.count_columns and engine.schema.by_name else ""
    try:
        cur.execute(f"CREATE TEMP TABLE sel AS SELECT i.image_id, i.width, i.height{counts} FROM images i "  # noqa: S608
                    f"WHERE {where} ORDER BY i.image_id", used_params(where, params))
        yield cur
    finally:
        cur.close()


def frame(cur: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object] | None = None) -> pl.DataFrame:
    """Run SQL on the cursor and hand back a Polars frame (column names come from the SQL aliases)."""
    return pl.from_arrow(cur.sql(sql, params=used_params(sql, params or {})).to_arrow_table())  # type: ignore[return-value]


def histogram(cur: duckdb.DuckDBPyConnection, value_sql: str, from_sql: str, bins: int, *, log: bool = False,
              group_sql: str | None = None, count_name: str = "count") -> pl.DataFrame:
    """Equal-width bins over [min, max] of `value_sql` (of its log10 with `log`); the last bin is closed.

    Columns: [group,] bin, bin_start, bin_end, last (the closed bin), <count_name>; values ≤ 0 are left out of log bins."""
    v = f"log10({value_sql})" if log else f"({value_sql})"
    keep = f"{value_sql} > 0" if log else f"{value_sql} IS NOT NULL"
    group = f"{group_sql} AS grp, " if group_sql else ""
    by = "grp, " if group_sql else ""
    edge = "pow(10, {x})" if log else "{x}"
    sql = (
        f"WITH v AS (SELECT {group}{v}::DOUBLE AS x FROM {from_sql} AND {keep}), "  # noqa: S608 - fixed SQL parts
        "r AS (SELECT min(x) AS lo, max(x) AS hi FROM v), "
        "b AS (SELECT v.*, CASE WHEN r.hi = r.lo THEN 0 ELSE least($bins - 1, floor((x - r.lo) / (r.hi - r.lo) * $bins))::INTEGER END AS bin "
        "FROM v, r) "
        f"SELECT {by}bin, {edge.format(x='r.lo + bin * (r.hi - r.lo) / $bins')} AS bin_start, "
        f"{edge.format(x='CASE WHEN r.hi = r.lo THEN r.hi ELSE r.lo + (bin + 1) * (r.hi - r.lo) / $bins END')} AS bin_end, "
        "(bin = $bins - 1 OR r.hi = r.lo) AS last, "
        f"count(*) AS {count_name} FROM b, r GROUP BY ALL ORDER BY {by}bin"
    )
    out = frame(cur, sql, {"bins": int(bins)})
    if group_sql:
        out = out.rename({"grp": "group"})
    return out


def rows(cur: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object] | None = None) -> list[tuple]:
    """All rows of a query, fully consumed (DuckDB 2 refuses new work while a result is left open)."""
    return cur.sql(sql, params=used_params(sql, params or {})).fetchall()


def count_columns(cur: duckdb.DuckDBPyConnection) -> list[int]:
    """Category ids whose per-image count column `sel` carries (empty: count from annotations)."""
    names = [r[0] for r in rows(cur, "SELECT column_name FROM (DESCRIBE sel)")]
    return [int(n[2:]) for n in names if n.startswith("c_") and n[2:].isdigit()]
