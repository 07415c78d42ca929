"""One dataset version loaded into an in-process DuckDB, plus a mirror of its curation rows.

The lake part is built once (lake versions are immutable once READY): images with per-class
count columns and a file-name rank, annotations without geometry lists but with one text and one
number column per attribute key, categories. The curation part (`tags`, `metadata`) follows the
catalog: `sync` applies the rows written after the sequence number it has seen, `apply` takes a
transaction's own rows directly (write-through), so an edit is searchable without re-reading it.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from dsgen_core.curation.store import ChangeSet, MetaRow, TagChange, fold_tags
from dsgen_core.lake.views import scan_params, scan_sql
from dsgen_core.query.compiler import TableLayout, json_pointer
from dsgen_core.query.plan import Plan, bind
from dsgen_core.search.curation_index import CurationIndex, locate

MAX_COUNT_COLUMNS = 256  # categories beyond this: counts come from the annotations table instead
MAX_ATTR_COLUMNS = 32
MEMO_ENTRIES = 256  # answers kept per engine (Streamlit reruns and paging ask the same again and again)
_PARAM_RE = re.compile(r"\$([A-Za-z_]\w*)")
META_SCHEMA = pa.schema([("image_id", pa.int64()), ("key", pa.string()), ("value_type", pa.string()),
                         ("value_str", pa.string()), ("value_num", pa.float64()), ("value_bool", pa.bool_()),
                         ("deleted", pa.bool_())])
Fetch = Callable[[int], tuple[list[TagChange], list[MetaRow]]]


def used_params(sql: str, params: dict[str, object]) -> dict[str, object]:
    """Only the parameters the SQL names: DuckDB refuses extra ones (the tuned compiler drops some)."""
    names = set(_PARAM_RE.findall(sql))
    return {k: v for k, v in params.items() if k in names}


class VersionEngine:
    """Search tables of one version; thread-safe: queries use per-thread cursors, updates a lock."""

    def __init__(self, version_id: int, folder: Path, split: str | None) -> None:
        self.version_id = version_id
        self.folder = folder
        self.seq = 0
        self.metadata_keys: list[str] = []
        self._db = duckdb.connect()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._memo: OrderedDict[Hashable, Any] = OrderedDict()
        self._memo_lock = threading.Lock()
        # (tag ops, their folded state on the first sync, metadata rows, first sync)
        self._pending: list[tuple[list[TagChange], dict[str, np.ndarray] | None, list[MetaRow], bool]] = []
        self._pending_lock = threading.Lock()
        self._columns: dict[str, np.ndarray] = {}
        self._orders: dict[tuple[str, bool], np.ndarray] = {}
        self._matrices: dict[tuple, np.ndarray] = {}
        self.split = split
        self.layout = self._load(split)
        self.curation = CurationIndex(self.image_ids)

    # -- building -----------------------------------------------------------------------------
    def _load(self, split: str | None) -> TableLayout:
        db, folder, vid = self._db, self.folder, int(self.version_id)
        db.execute(f"CREATE TABLE categories AS SELECT *, {vid}::BIGINT AS version_id FROM read_parquet($c)",  # noqa: S608
                   scan_params(folder, c="categories"))
        cats = db.execute("SELECT category_id, name, supercategory FROM categories ORDER BY category_id").fetchall()
        by_name: dict[str, list[int]] = {}
        by_super: dict[str, list[int]] = {}
        for cid, name, sup in cats:
            by_name.setdefault(name, []).append(int(cid))
            if sup is not None:
                by_super.setdefault(sup, []).append(int(cid))
        # Image positions first: each annotation row carries its image's position, so conditions on
        # annotations answer positions without a join; rows grouped by class let DuckDB skip row groups.
        # (positions in SQL, not a registered Arrow table: DuckDB's register() imports pandas, ~0.75 s)
        db.execute("CREATE TEMP TABLE img_pos AS SELECT image_id, (row_number() OVER (ORDER BY image_id) - 1)::INTEGER "
                   "AS pos FROM read_parquet($i)", scan_params(folder, i="images"))
        self.image_ids = np.asarray(db.execute("SELECT image_id FROM img_pos ORDER BY pos").fetchnumpy()["image_id"],
                                    dtype=np.int64)
        anns = scan_sql(folder, "annotations", "a")
        keys = self._attribute_keys(anns, folder)
        attr_columns = {key: n for n, key in enumerate(keys)}
        extracted = "".join(f", json_extract_string(a.attributes, $k{n}) AS at_{n}" for n in attr_columns.values())
        extracted += "".join(f", TRY_CAST(json_extract_string(a.attributes, $k{n}) AS DOUBLE) AS an_{n}"
                             for n in attr_columns.values())
        db.execute(
            f"CREATE TABLE annotations AS SELECT a.* EXCLUDE (polygons, rle, keypoints, extra), "  # noqa: S608
            f"{vid}::BIGINT AS version_id{extracted}, p.pos FROM {anns} a LEFT JOIN img_pos p USING (image_id) "
            "ORDER BY a.category_id",
            {**scan_params(folder, a="annotations"), **{f"k{n}": json_pointer(k) for k, n in attr_columns.items()}})
        db.execute("DROP TABLE img_pos")
        with_counts = len(cats) <= MAX_COUNT_COLUMNS
        counts = ", ".join(f"count(*) FILTER (WHERE category_id = {int(c)})::INTEGER AS c_{int(c)}"
                           for c, _, _ in cats) if with_counts and cats else ""
        if counts:
            db.execute(f"CREATE TEMP TABLE per_image AS SELECT image_id, {counts} FROM annotations GROUP BY image_id")  # noqa: S608
            picked = ", " + ", ".join(f"coalesce(k.c_{int(c)}, 0)::INTEGER AS c_{int(c)}" for c, _, _ in cats)
            join = " LEFT JOIN per_image k USING (image_id)"
        else:
            picked, join = "", ""
        db.execute(
            f"CREATE TABLE images AS SELECT i.*, {vid}::BIGINT AS version_id, $split::VARCHAR AS split, "  # noqa: S608
            f"(row_number() OVER (ORDER BY i.file_name, i.image_id))::INTEGER AS file_rank, "
            f"(row_number() OVER (ORDER BY i.image_id) - 1)::INTEGER AS pos{picked} "
            f"FROM read_parquet($i) i{join} ORDER BY i.image_id",
            {"split": split, **scan_params(folder, i="images")})
        db.execute("DROP TABLE IF EXISTS per_image")
        self.annotated = np.zeros(len(self.image_ids), bool)
        self.annotated[db.execute("SELECT DISTINCT pos FROM annotations WHERE pos IS NOT NULL").fetchnumpy()["pos"]] = True
        db.execute("CREATE TABLE tags (version_id BIGINT, image_id BIGINT, tag VARCHAR)")
        db.execute("CREATE TABLE metadata (version_id BIGINT, image_id BIGINT, key VARCHAR, value_type VARCHAR, "
                   "value_str VARCHAR, value_num DOUBLE, value_bool BOOLEAN)")
        return TableLayout(single_version=True, by_name=by_name, by_super=by_super, count_columns=with_counts,
                           attr_columns=attr_columns)

    def _attribute_keys(self, anns: str, folder: Path) -> list[str]:
        """The most common attribute keys, extracted into typed columns that read exactly as the JSON path."""
        try:
            return [r[0] for r in self._db.execute(
                f"SELECT k, count(*) FROM (SELECT unnest(json_keys(a.attributes)) AS k FROM {anns} a "  # noqa: S608
                "WHERE a.attributes IS NOT NULL) GROUP BY k ORDER BY 2 DESC, 1 LIMIT $n",
                {"n": MAX_ATTR_COLUMNS, **scan_params(folder, a="annotations")}).fetchall()]
        except duckdb.Error:
            return []  # attributes that are not all JSON objects: keep reading them through JSON paths

    # -- curation mirror ----------------------------------------------------------------------
    def sync(self, seq: int, fetch: Fetch) -> None:
        """Bring the mirror to catalog sequence `seq` by applying the rows written after the one it has."""
        if seq <= self.seq:
            return
        with self._lock:
            if seq <= self.seq:
                return
            tags, meta = fetch(self.seq)
            self._apply_rows(tags, meta, initial=self.seq == 0)
            self.seq = seq

    def apply(self, changes: ChangeSet) -> bool:
        """Write-through of this process's own transaction; False when other edits came between."""
        with self._lock:
            if changes.seq != self.seq + 1:
                return False
            self._apply_rows(changes.tags, changes.meta, initial=False)
            self.seq = changes.seq
            return True

    def _apply_rows(self, tags: list[TagChange], meta: list[MetaRow], initial: bool) -> None:
        """The arrays change now (searches read them); the DuckDB tables, which only facets, insights
        and SQL fallbacks read, catch up on their next use (`_flush`): a bulk edit pays one of the two."""
        state = fold_tags(tags) if initial and tags else None  # the first sync: the whole tag state
        if state is not None:
            self.curation.set_tags(state)
        elif tags:
            self.curation.apply_tags(tags)
        if meta:
            self.curation.apply_meta(meta)
            self.metadata_keys = sorted(self.curation.meta)
        if tags or meta:
            with self._pending_lock:
                self._pending.append((tags, state, meta, initial))

    def _flush(self) -> None:
        """Write the curation changes not yet in the DuckDB mirror, in sequence order."""
        with self._pending_lock:
            pending, self._pending = self._pending, []
            if not pending:
                return
            cur = self._db.cursor()
            try:
                for tags, state, meta, initial in pending:
                    self._write_rows(cur, tags, state, meta, initial)
            finally:
                cur.close()

    def _write_rows(self, cur: duckdb.DuckDBPyConnection, tags: list[TagChange],
                    state: dict[str, np.ndarray] | None, meta: list[MetaRow], initial: bool) -> None:
        vid = int(self.version_id)
        if state is not None:
            ids = np.concatenate(list(state.values())) if state else np.empty(0, np.int64)
            names = np.repeat(np.array(list(state), dtype=object), [len(v) for v in state.values()])
            cur.register("chg_tags", pa.table({"image_id": ids, "tag": pa.array(names, pa.string())}))
            cur.execute(f"INSERT INTO tags SELECT {vid}, image_id, tag FROM chg_tags")  # noqa: S608
            cur.unregister("chg_tags")
        elif tags:
            for change in tags:
                self._apply_tag(cur, vid, change)
        if meta:
            cur.register("chg_meta", pa.Table.from_pylist(
                [dict(zip(META_SCHEMA.names, r, strict=True)) for r in meta], schema=META_SCHEMA))
            if not initial:
                cur.execute("DELETE FROM metadata USING chg_meta c WHERE metadata.image_id = c.image_id "
                            "AND metadata.key = c.key")
            cur.execute(f"INSERT INTO metadata SELECT {vid}, image_id, key, value_type, value_str, value_num, "  # noqa: S608
                        "value_bool FROM chg_meta WHERE NOT deleted")
            cur.unregister("chg_meta")

    @staticmethod
    def _apply_tag(cur: duckdb.DuckDBPyConnection, vid: int, change: TagChange) -> None:
        """An op's ids are exactly the images whose state it changed, and ops come in sequence order
        (`sync` and `apply` check it), so an added tag is never there yet and a removed one always is."""
        cur.register("chg_ids", pa.table({"image_id": change.ids}))
        try:
            if change.present:
                cur.execute(f"INSERT INTO tags SELECT {vid}, image_id, $t FROM chg_ids",  # noqa: S608
                            {"t": change.tag})
            else:
                cur.execute("DELETE FROM tags WHERE tag = $t AND image_id IN (SELECT image_id FROM chg_ids)",
                            {"t": change.tag})
        finally:
            cur.unregister("chg_ids")

    def tag_holders(self, tag: str, ids: np.ndarray) -> np.ndarray:
        """Which of `ids` (sorted) have `tag` now."""
        held = self.curation.tags.get(tag)
        if held is None:
            return ids[:0]
        return ids[np.isin(ids, self.image_ids[held])]

    def unknown_ids(self, ids: np.ndarray) -> np.ndarray:
        """The given ids (sorted) that are not images of the version."""
        _, known = locate(self.image_ids, ids)
        return ids[~known]

    # -- querying -----------------------------------------------------------------------------
    def plan(self, query: str) -> Plan:
        """The query bound against this version's vocabulary (its metadata keys follow the curation)."""
        return bind(query or "", self.metadata_keys)

    def forget(self) -> None:
        """Drop remembered answers (benchmarks time the first answer this way)."""
        with self._memo_lock:
            self._memo.clear()

    def memo(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """An answer computed once per (key, curation sequence): the lake part never changes, and every
        curation change bumps the sequence, so a remembered answer is never stale. Kept most-recent-first."""
        seq = self.seq
        full = (seq, key)
        with self._memo_lock:
            if full in self._memo:
                self._memo.move_to_end(full)
                return self._memo[full]
        value = compute()
        if self.seq == seq:  # not when an edit came in while computing (the answer may predate it)
            with self._memo_lock:
                self._memo[full] = value
                while len(self._memo) > MEMO_ENTRIES:
                    self._memo.popitem(last=False)
        return value

    def lake_column(self, name: str) -> np.ndarray:
        """A column of `images` in position order, numbers as float64 with NaN for NULL (kept: the lake
        part never changes). `name` is one of the engine's own column names, never user text."""
        column = self._columns.get(name)
        if column is None:
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
                raise ValueError(f"not a column name: {name!r}")
            raw = self._lake(f"SELECT {name} FROM images ORDER BY pos").fetchnumpy()[name]  # noqa: S608 - checked
            column = np.ma.filled(np.ma.asarray(raw).astype(np.float64), np.nan) if raw.dtype.kind in "iuf" \
                else np.asarray(raw)
            self._columns[name] = column
        return column

    def count_matrix(self, category_ids: list[int]) -> np.ndarray:
        """Per-image counts of the given classes as an (images × classes) int32 matrix in position order."""
        key = ("counts", *category_ids)
        matrix = self._matrices.get(key)
        if matrix is None:
            matrix = np.zeros((len(self.image_ids), len(category_ids)), np.int32)
            for j, cid in enumerate(category_ids):
                matrix[:, j] = self.lake_column(f"c_{int(cid)}")
            self._matrices[key] = matrix
        return matrix

    def order(self, name: str, descending: bool) -> np.ndarray:
        """Image positions sorted by a lake column, NULLs last, ties by image id in the same direction
        (the order the SQL path gives)."""
        key = (name, descending)
        perm = self._orders.get(key)
        if perm is None:
            values = self.lake_column(name)
            null = np.isnan(values)
            filled = np.where(null, 0.0, values)
            sign = -1 if descending else 1
            perm = self._orders[key] = np.lexsort((sign * self.image_ids, sign * filled, null))
        return perm

    def image_positions(self, where: str, params: dict[str, object]) -> np.ndarray:
        """Positions of the images matching compiled SQL over alias `i`."""
        sql = f"SELECT i.pos FROM images i WHERE {where}"  # noqa: S608 - compiled, values are parameters
        return self.execute(sql, params).fetchnumpy()["pos"]

    def annotation_positions(self, cond: str, params: dict[str, object]) -> np.ndarray:
        """Positions of the images with an annotation matching compiled SQL over alias `a`."""
        sql = f"SELECT a.pos FROM annotations a WHERE a.pos IS NOT NULL AND ({cond})"  # noqa: S608 - compiled
        return self._lake(sql, params).fetchnumpy()["pos"]

    def annotation_counts(self, cond: str, params: dict[str, object]) -> tuple[np.ndarray, np.ndarray]:
        sql = (f"SELECT a.pos, count(*) AS n FROM annotations a WHERE a.pos IS NOT NULL AND ({cond}) "  # noqa: S608
               "GROUP BY a.pos")
        got = self._lake(sql, params).fetchnumpy()
        return got["pos"], got["n"]

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor, with the curation mirror brought up to date first."""
        if self._pending:
            self._flush()
        return self._thread_cursor()

    def _thread_cursor(self) -> duckdb.DuckDBPyConnection:
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._local.cursor = self._db.cursor()
        return cur

    def _lake(self, sql: str, params: dict[str, object] | None = None) -> duckdb.DuckDBPyConnection:
        """SQL that reads only the lake tables (images, annotations, categories): the curation mirror
        need not catch up first, so a process's first search does not pay for writing it."""
        return self._thread_cursor().execute(sql, used_params(sql, params or {}))

    def execute(self, sql: str, params: dict[str, object] | None = None) -> duckdb.DuckDBPyConnection:
        return self.cursor().execute(sql, used_params(sql, params or {}))

    def fetchall(self, sql: str, params: dict[str, object] | None = None) -> list[tuple[Any, ...]]:
        return self.execute(sql, params).fetchall()

    def close(self) -> None:
        self._db.close()
