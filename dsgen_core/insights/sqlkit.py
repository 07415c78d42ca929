"""Small SQL helpers shared by the insight computations: a per-call cursor holding the subset, histograms.

Histograms are computed in two steps, `value_ranges` then `histograms`, so that the range can come from
elsewhere: comparing subsets bins all of them on the union of their ranges (the same edges on each side)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from dsgen_core.query.plan import Plan, bind
from dsgen_core.search.engine import VersionEngine, used_params
from dsgen_core.search.masks import plan_mask

Ranges = dict[str, tuple[float, float]]  # measure → (min, max) of its binned values (of log10 for log measures)
HIST_SCHEMA = {"measure": pl.String, "group": pl.String, "bin": pl.Int32, "bin_start": pl.Float64,
               "bin_end": pl.Float64, "last": pl.Boolean, "count": pl.Int64}


WHOLE = bind("")


@contextmanager
def subset_cursor(engine: VersionEngine, plan: Plan = WHOLE) -> Iterator[duckdb.DuckDBPyConnection]:
    """A private connection on the engine's database with temp table `sel` (the subset's images):
    temp tables are per connection, so parallel requests never see each other's subset. The subset is
    found by the search engine's arrays and picked by position (images are stored in position order)."""
    cur = engine.cursor().cursor()
    # the engine's per-class count columns (c_<category id>) come along: class statistics read them
    counts = ", COLUMNS('^c_[0-9]+$')" if engine.layout.count_columns and engine.layout.by_name else ""
    columns = f"i.image_id, i.pos, i.width, i.height, i.size_bytes, i.num_annotations{counts}"
    try:
        if plan.matches_all:  # the whole version: a view of the images, nothing copied
            cur.execute(f"CREATE TEMP VIEW sel AS SELECT {columns} FROM images i")  # noqa: S608 - fixed SQL
        else:
            cur.register("sel_keep", pa.table({"keep": plan_mask(engine, plan)}))
            cur.execute(f"CREATE TEMP TABLE sel AS SELECT {columns} FROM images i POSITIONAL JOIN sel_keep k "  # noqa: S608
                        "WHERE k.keep")
            cur.unregister("sel_keep")
        yield cur
    finally:
        cur.close()


def subset_mask(cur: duckdb.DuckDBPyConnection, size: int) -> np.ndarray:
    """The subset as a boolean mask over the engine's image positions."""
    mask = np.zeros(size, bool)
    mask[cur.sql("SELECT pos FROM sel").fetchnumpy()["pos"]] = True
    return mask


def is_whole(cur: duckdb.DuckDBPyConnection) -> bool:
    """Whether the subset is every image of the version (then annotation-level queries skip the join)."""
    return bool(rows(cur, "SELECT (SELECT count(*) FROM sel) = (SELECT count(*) FROM images)")[0][0])


def frame(cur: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object] | None = None) -> pl.DataFrame:
    """Run SQL on the cursor and hand back a Polars frame (column names come from the SQL aliases)."""
    return pl.from_arrow(cur.sql(sql, params=used_params(sql, params or {})).to_arrow_table())  # type: ignore[return-value]


def rows(cur: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object] | None = None) -> list[tuple]:
    """All rows of a query, fully consumed (DuckDB 2 refuses new work while a result is left open)."""
    return cur.sql(sql, params=used_params(sql, params or {})).fetchall()


@dataclass(frozen=True)
class Measure:
    """A binned quantity of `source` rows: its SQL (named `$p<n>` parameters in `params`), log-spaced bins
    or not, and a row condition of its own. Values ≤ 0 are left out of log bins, NULLs out of all.
    `x`: a column already holding the binned value (log10 of it for log measures), so that bins read it instead
    of computing it per row; with `x`, both it and `value_sql` must be NULL exactly where the row is left out."""

    name: str
    value_sql: str
    log: bool = False
    where: str = "TRUE"
    params: dict[str, object] = field(default_factory=dict)
    x: str | None = None

    @property
    def x_sql(self) -> str:
        if self.x is not None:
            return self.x
        return f"log10({self.value_sql})::DOUBLE" if self.log else f"({self.value_sql})::DOUBLE"

    @property
    def range_sql(self) -> str:
        """The value whose min and max give the range (a bare column when NULL already marks the rows left out)."""
        if self.where == "TRUE" and (self.x is not None or not self.log):
            return f"({self.value_sql})::DOUBLE"
        return f"CASE WHEN {self.keep_sql} THEN ({self.value_sql})::DOUBLE END"

    @property
    def keep_sql(self) -> str:
        if self.x is not None:
            return f"({self.where}) AND {self.x} IS NOT NULL"
        keep = f"({self.value_sql}) > 0" if self.log else f"({self.value_sql}) IS NOT NULL"
        return f"({self.where}) AND {keep}"


def value_ranges(cur: duckdb.DuckDBPyConnection, measures: list[Measure], source: str,
                 group_sql: str | None = None, groups: set | None = None) -> Ranges:
    """(min, max) of every measure over `source` in one scan; measures without a value are left out.
    With `group_sql`, only rows whose group is in `groups` count (the groups are aggregated apart and merged).

    A log measure's range is log10 of its raw min and max (log10 is increasing): one log10 per measure,
    not per row; `histograms` clamps bins, so an ulp of rounding can never leave the range."""
    if not measures:
        return {}
    aggs = []
    for m in measures:
        aggs += [f"min({m.range_sql})", f"max({m.range_sql})"]
    params = {k: v for m in measures for k, v in m.params.items()}
    if group_sql:
        got_rows = rows(cur, f"SELECT {group_sql}, {', '.join(aggs)} FROM {source} GROUP BY ALL", params)  # noqa: S608
        parts = [r[1:] for r in got_rows if groups is None or r[0] in groups]
    else:
        parts = rows(cur, f"SELECT {', '.join(aggs)} FROM {source}", params)  # noqa: S608 - fixed SQL parts
    raw: dict[str, tuple[float, float]] = {}
    for part in parts:
        for n, m in enumerate(measures):
            lo, hi = part[2 * n], part[2 * n + 1]
            if lo is not None:
                a, b = raw.get(m.name, (lo, hi))
                raw[m.name] = (min(a, lo), max(b, hi))
    logged = [k for k in raw if any(m.log and m.name == k for m in measures)]
    if logged:  # log10 in DuckDB, as the rows' values are
        values = rows(cur, "SELECT " + ", ".join(f"log10($a{n}), log10($b{n})" for n in range(len(logged))),  # noqa: S608
                      {p: v for n, k in enumerate(logged) for p, v in ((f"a{n}", raw[k][0]), (f"b{n}", raw[k][1]))})[0]
        raw.update({k: (values[2 * n], values[2 * n + 1]) for n, k in enumerate(logged)})
    return {k: (float(lo), float(hi)) for k, (lo, hi) in raw.items()}


def merge_ranges(parts: Iterable[Ranges]) -> Ranges:
    """The union of ranges measure by measure (comparison mode: one set of edges for every subset)."""
    out: Ranges = {}
    for part in parts:
        for name, (lo, hi) in part.items():
            a, b = out.get(name, (lo, hi))
            out[name] = (min(a, lo), max(b, hi))
    return out


def histograms(cur: duckdb.DuckDBPyConnection, measures: list[Measure], source: str, bins: int, ranges: Ranges,
               group_sql: str | None = None) -> pl.DataFrame:
    """Equal-width bins of each measure over its range (in log10 for log measures), in one query; the last
    bin is closed. Columns: measure, group (of `group_sql`'s type; NULL without it), bin, bin_start, bin_end,
    last, count.

    A value is in bin floor((x − lo) / (hi − lo) · bins), clamped to 0…bins − 1 (all in bin 0 when hi = lo)."""
    parts, params = [], {"bins": int(bins)}
    group = group_sql or "NULL"
    for n, m in enumerate(measures):
        if m.name not in ranges:
            continue
        params.update(m.params)
        params[f"lo{n}"], params[f"hi{n}"] = (float(v) for v in ranges[m.name])
        lo, hi, same = f"$lo{n}", f"$hi{n}", f"$hi{n} = $lo{n}"
        edge = "pow(10, {x})" if m.log else "{x}"
        start = edge.format(x=f"{lo} + bin * ({hi} - {lo}) / $bins")
        end = edge.format(x=f"CASE WHEN {same} THEN {hi} ELSE {lo} + (bin + 1) * ({hi} - {lo}) / $bins END")
        # per row only floor(); the clamp runs on the few groups (the same function of the same value)
        raw = "0" if params[f"lo{n}"] == params[f"hi{n}"] else f"floor(({m.x_sql} - {lo}) / ({hi} - {lo}) * $bins)"
        parts.append(
            f"SELECT {n} AS m, grp, bin, {start} AS bin_start, {end} AS bin_end, "  # noqa: S608 - fixed SQL parts
            f"(bin = $bins - 1 OR {same}) AS last, sum(c)::BIGINT AS count FROM ("
            "SELECT grp, greatest(0, least($bins - 1, raw))::INTEGER AS bin, c FROM ("
            f"SELECT {group} AS grp, {raw} AS raw, count(*) AS c FROM {source} WHERE {m.keep_sql} GROUP BY ALL)) "
            "GROUP BY grp, bin")
    if not parts:
        return pl.DataFrame(schema=HIST_SCHEMA)
    schema = dict(HIST_SCHEMA)
    out = frame(cur, " UNION ALL ".join(parts) + " ORDER BY m, grp, bin", params)
    names = pl.DataFrame({"m": list(range(len(measures))), "measure": [m.name for m in measures]},
                         schema={"m": out.schema["m"], "measure": pl.String})
    out = out.join(names, on="m", how="left").rename({"grp": "group"}).select(*HIST_SCHEMA)
    if group_sql:
        del schema["group"]
    return out.cast(schema)  # type: ignore[arg-type]


def count_columns(cur: duckdb.DuckDBPyConnection) -> list[int]:
    """Category ids whose per-image count column `sel` carries (empty: count from annotations)."""
    names = [r[0] for r in rows(cur, "SELECT column_name FROM (DESCRIBE sel)")]
    return [int(n[2:]) for n in names if n.startswith("c_") and n[2:].isdigit()]
