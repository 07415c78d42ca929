"""Per-version derived tables (`ins_*`) in the version engine's DuckDB, built once per engine on first use.

They hold per-annotation values that box and attribute insights would otherwise recompute on every call
(log10 of area and aspect, the centre relative to the image, the border flag, attribute values as integer
codes). They depend on the lake tables only, which are immutable once a version is READY, so they are
never invalidated; subsets (DSL + curation state) are joined to them per call, never stored in them.

Tables live in the engine's database, so every cursor of the engine sees them; a per-engine lock makes
one thread build each table while the others wait."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb
import polars as pl

from dsgen_core.insights.sqlkit import rows, subset_cursor
from dsgen_core.search.engine import VersionEngine

BOX = "ins_box"  # per annotation with a box or an area: ids, sizes, COCO bucket, log10s, centre, border flag
ATTR = "ins_attr"  # image_id, category_id, v_<n> (the code of attribute column at_<n>, NULL when absent)
ATTR_VALUES = "ins_attr_values"  # n, code, value: the text of each code of attribute column at_<n>
BOX_RANGES = "ins_box_ranges"  # measure, lo, hi: the box histograms' ranges on the whole version
COOC = "ins_cooc"  # category_a, category_b, images: class co-occurrence on the whole version
ATTR_JOINT = "ins_attr_joint"  # category_id, v_<n>…, n: ins_attr grouped by all its codes (when few combinations)
SMALL, MEDIUM = 32**2, 96**2  # COCO's area thresholds (bucket 0 below SMALL, 1 below MEDIUM, 2 from MEDIUM)
JOINT_LIMIT = 50_000  # distinct (class, all attribute codes) rows up to which attributes are counted jointly


@dataclass
class Derived:
    """What has been built for one engine: table → build seconds; and attribute facts found on the way."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    seconds: dict[str, float] = field(default_factory=dict)
    joint_rows: int = -1  # distinct (class, v_0, …, v_k) combinations of the whole version (-1: not built)
    joint_built: bool = False  # ins_attr_joint exists


_state: weakref.WeakKeyDictionary[VersionEngine, Derived] = weakref.WeakKeyDictionary()
_state_lock = threading.Lock()


def _derived(engine: VersionEngine) -> Derived:
    with _state_lock:
        d = _state.get(engine)
        if d is None:
            d = _state[engine] = Derived()
        return d


def _build_box(cur: duckdb.DuckDBPyConnection, engine: VersionEngine, d: Derived) -> None:
    """Box values exactly as the insights computed them per call (same SQL expressions, in DOUBLE), so that
    bins and cells come out bit-identical; ordered by image so subset joins read runs of rows. An annotation
    whose image is missing keeps its sizes but has no centre and never touches the border (as before)."""
    cur.execute(
        f"CREATE OR REPLACE TABLE {BOX} AS SELECT a.image_id, a.category_id, a.bbox_w AS w, a.bbox_h AS h, "  # noqa: S608
        "size, CASE WHEN size < $small THEN 0 WHEN size < $medium THEN 1 WHEN size >= $medium THEN 2 END::UTINYINT "
        "AS bucket, CASE WHEN a.bbox_w IS NOT NULL THEN least(a.bbox_w, a.bbox_h) END AS side, "
        "CASE WHEN a.bbox_w * a.bbox_h > 0 THEN a.bbox_w * a.bbox_h END AS ar, "
        "CASE WHEN a.bbox_w / NULLIF(a.bbox_h, 0) > 0 THEN a.bbox_w / NULLIF(a.bbox_h, 0) END AS asp, "
        "log10(ar)::DOUBLE AS la, log10(asp)::DOUBLE AS lr, "
        "CASE WHEN i.width > 0 AND i.height > 0 THEN (a.bbox_x + a.bbox_w / 2) / i.width END AS cx, "
        "CASE WHEN i.width > 0 AND i.height > 0 THEN (a.bbox_y + a.bbox_h / 2) / i.height END AS cy, "
        "(a.bbox_w IS NOT NULL AND i.img IS NOT NULL AND (a.bbox_x <= 0 OR a.bbox_y <= 0 "
        "OR a.bbox_x + a.bbox_w >= i.width OR a.bbox_y + a.bbox_h >= i.height)) AS border "
        "FROM (SELECT *, coalesce(area, bbox_w * bbox_h) AS size FROM annotations) a "
        "LEFT JOIN (SELECT image_id AS img, width, height FROM images) i ON i.img = a.image_id "
        "WHERE a.bbox_w IS NOT NULL OR a.area IS NOT NULL ORDER BY a.image_id", {"small": SMALL, "medium": MEDIUM})


def _build_attr(cur: duckdb.DuckDBPyConnection, engine: VersionEngine, d: Derived) -> None:
    """The engine's extracted attribute columns as dense integer codes (grouping integers is much cheaper
    than grouping text), plus the code → text dictionary; rows without any extracted attribute are left out."""
    cols = sorted(int(n) for n in engine.layout.attr_columns.values())
    if not cols:
        return
    values = " UNION ALL ".join(
        f"SELECT {n} AS n, (row_number() OVER (ORDER BY v))::UINTEGER AS code, v AS value "  # noqa: S608 - integers
        f"FROM (SELECT DISTINCT at_{n} AS v FROM annotations WHERE at_{n} IS NOT NULL)" for n in cols)
    cur.execute(f"CREATE OR REPLACE TABLE {ATTR_VALUES} AS {values}")
    codes = ", ".join(f"d{n}.code AS v_{n}" for n in cols)
    joins = " ".join(f"LEFT JOIN (SELECT code, value FROM {ATTR_VALUES} WHERE n = {n}) d{n} "  # noqa: S608 - integers
                     f"ON d{n}.value = a.at_{n}" for n in cols)
    present = " OR ".join(f"a.at_{n} IS NOT NULL" for n in cols)
    cur.execute(f"CREATE OR REPLACE TABLE {ATTR} AS SELECT a.image_id, a.category_id, {codes} "  # noqa: S608
                f"FROM annotations a {joins} WHERE {present} ORDER BY a.image_id")
    v = ", ".join(f"v_{n}" for n in cols)
    d.joint_rows = int(cur.execute(f"SELECT count(*) FROM (SELECT DISTINCT category_id, {v} FROM {ATTR})")  # noqa: S608
                       .fetchone()[0])  # type: ignore[index]
    if d.joint_rows <= JOINT_LIMIT:  # the whole version's counts, read instead of the rows when nothing is filtered
        cur.execute(f"CREATE OR REPLACE TABLE {ATTR_JOINT} AS SELECT category_id, {v}, count(*) AS n "  # noqa: S608
                    f"FROM {ATTR} GROUP BY ALL")
        d.joint_built = True


_BUILDERS: dict[str, Callable[[duckdb.DuckDBPyConnection, VersionEngine, Derived], None]] = {
    BOX: _build_box, ATTR: _build_attr}


def register_whole(table: str, answer: Callable[[duckdb.DuckDBPyConnection], pl.DataFrame]) -> None:
    """Make `table` a derived table holding `answer` on the whole version (a subset cursor of every image):
    for parts of insights that depend on the lake tables only, read instead of recomputed when nothing is
    filtered. `answer` must not depend on settings."""
    def build(cur: duckdb.DuckDBPyConnection, engine: VersionEngine, d: Derived) -> None:
        with subset_cursor(engine) as whole:
            out = answer(whole).with_row_index("_row").to_arrow()
            whole.register("whole_answer", out)
            whole.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM whole_answer")  # noqa: S608 - a name
            whole.unregister("whole_answer")

    _BUILDERS[table] = build


def stored(cur: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether a derived table exists (insight functions see cursors, not engines)."""
    return bool(rows(cur, "SELECT count(*) FROM duckdb_tables() WHERE NOT temporary AND table_name = $t",
                     {"t": table})[0][0])


def ensure(engine: VersionEngine, *tables: str) -> None:
    """Build the named derived tables of this engine unless built already (once; other threads wait)."""
    d = _derived(engine)
    missing = [t for t in tables if t not in d.seconds]
    if not missing:
        return
    with d.lock:
        for table in missing:
            if table in d.seconds:
                continue
            if table not in _BUILDERS:  # whole-version answers are registered by the insight modules
                import dsgen_core.insights.registry  # noqa: F401
            t = time.perf_counter()
            cur = engine.cursor().cursor()
            try:
                _BUILDERS[table](cur, engine, d)
            finally:
                cur.close()
            d.seconds[table] = time.perf_counter() - t


def build_seconds(engine: VersionEngine) -> dict[str, float]:
    """Seconds each derived table of the engine took to build (what the first insight using it paid)."""
    return dict(_derived(engine).seconds)


def has_attr_codes(engine: VersionEngine) -> bool:
    return ATTR in _derived(engine).seconds and bool(engine.layout.attr_columns)


def joint_attributes(engine: VersionEngine) -> bool:
    """Whether attribute counts group all codes at once (few combinations; `ins_attr_joint` holds the whole
    version's) rather than key by key."""
    d = _derived(engine)
    return d.joint_built and d.joint_rows <= JOINT_LIMIT
