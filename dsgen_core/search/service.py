"""What the gallery asks an engine: one sorted page with the total, facets, and matching ids."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from dsgen_core.errors import InvalidRequest
from dsgen_core.query import CompiledQuery, Plan, compile_query
from dsgen_core.query.compiler import SORT_KEYS, check_page
from dsgen_core.query.plan import METADATA_PREFIX
from dsgen_core.search.curation_index import NO_CODE
from dsgen_core.search.engine import VersionEngine
from dsgen_core.search.masks import plan_mask

# file_name sorts on a precomputed rank: the same order as (file_name, image_id), integer-cheap.
SORT_COLUMNS = {**SORT_KEYS, "file_name": "i.file_rank"}
# the same sort keys as engine columns, for sorting positions in numpy
ORDER_COLUMNS = {"file_name": "file_rank", "width": "width", "height": "height", "boxes": "num_annotations",
                 "image_id": "image_id"}
MAX_PAGE = 10_000


@dataclass
class SearchPage:
    total: int
    image_ids: list[int]
    seq: int  # curation sequence the answer reflects (a filter snapshot = query + version + seq)


@dataclass
class CategoryFacet:
    name: str
    images: int
    instances: int


@dataclass
class MetadataFacet:
    key: str
    images: int
    top_values: list[tuple[object, int]]


@dataclass
class Facets:
    total: int
    categories: list[CategoryFacet] = field(default_factory=list)
    tags: list[tuple[str, int]] = field(default_factory=list)
    metadata: list[MetadataFacet] = field(default_factory=list)
    seq: int = 0


def compile_for(engine: VersionEngine, query: str | Plan) -> CompiledQuery:
    """The query as SQL over the engine's tables: the reference the array path is tested against."""
    plan = query if isinstance(query, Plan) else engine.plan(query)
    return compile_query(plan, layout=engine.layout)


def search_page(engine: VersionEngine, query: str, order_by: str = "file_name", descending: bool = False,
                limit: int = 100, offset: int = 0) -> SearchPage:
    if not 0 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"page size {limit}: expected 0..{MAX_PAGE}")
    try:
        check_page(order_by, limit, offset, sort_columns=SORT_COLUMNS)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    plan = engine.plan(query)
    page = engine.memo(("page", plan.key, order_by, bool(descending), limit, offset),
                       lambda: _page(engine, plan, order_by, descending, limit, offset))
    return SearchPage(page.total, list(page.image_ids), page.seq)  # callers may change their copy


def _page(engine: VersionEngine, plan: Plan, order_by: str, descending: bool, limit: int,
          offset: int) -> SearchPage:
    """Filter as a mask, then sort positions: the same order as page_sql's ORDER BY (NULLS LAST, ties by id)."""
    seq = engine.seq
    mask = plan_mask(engine, plan)
    column = ORDER_COLUMNS.get(order_by)
    if column is not None:
        order = engine.order(column, descending)
        hits = order[mask[order]]
    else:
        hits = np.flatnonzero(mask)
        hits = hits[metadata_order(engine, order_by[len(METADATA_PREFIX):], descending, hits)]
    return SearchPage(total=len(hits), image_ids=engine.image_ids[hits[offset:offset + limit]].tolist(), seq=seq)


def metadata_order(engine: VersionEngine, key: str, descending: bool, hits: np.ndarray) -> np.ndarray:
    """Order of `hits` by a metadata key: numbers, then texts (byte order, as DuckDB), then booleans, each
    NULLS LAST, ties by image id; all in the same direction, as the SQL path sorts."""
    sign = -1 if descending else 1
    ids = engine.image_ids[hits]
    column = engine.curation.meta.get(key)
    if column is None:
        return np.argsort(sign * ids, kind="stable")
    numbers, codes, flags = column.numbers[hits], column.codes[hits], column.flags[hits]
    ranks = np.empty(len(column.texts) + 1, np.int64)
    ranks[np.argsort(np.array(column.texts, dtype=object), kind="stable")] = np.arange(len(column.texts))
    ranks[-1] = 0  # NO_CODE indexes the last slot
    no_num, no_text, no_flag = np.isnan(numbers), codes == NO_CODE, flags == -1
    return np.lexsort((sign * ids, sign * np.where(no_flag, 0, flags), no_flag, sign * ranks[codes], no_text,
                       sign * np.where(no_num, 0.0, numbers), no_num))


def matching_ids(engine: VersionEngine, query: str) -> list[int]:
    return matching_id_array(engine, query).tolist()


def matching_id_array(engine: VersionEngine, query: str) -> np.ndarray:
    """The matching image ids, sorted, as int64."""
    return engine.image_ids[plan_mask(engine, engine.plan(query))]


def facets(engine: VersionEngine, query: str, top: int = 10) -> Facets:
    """Counts over the query result: categories (images, instances), tags, metadata keys and top values."""
    plan = engine.plan(query)
    return engine.memo(("facets", plan.key, int(top)), lambda: _facets(engine, plan, top))


def _facets(engine: VersionEngine, plan: Plan, top: int) -> Facets:
    seq = engine.seq
    cur = engine.cursor()
    cur.register("facet_ids", pa.table({"image_id": engine.image_ids[plan_mask(engine, plan)]}))
    try:
        cur.execute("CREATE OR REPLACE TEMP TABLE facet_r AS SELECT image_id FROM facet_ids")
    finally:
        cur.unregister("facet_ids")
    try:
        total = cur.execute("SELECT count(*) FROM facet_r").fetchall()[0][0]
        cats = cur.execute(
            "SELECT c.name, count(DISTINCT a.image_id), count(*) FROM annotations a "
            "JOIN categories c USING (category_id) SEMI JOIN facet_r r ON r.image_id = a.image_id "
            "GROUP BY c.name ORDER BY 2 DESC, 1").fetchall()
        tags = cur.execute("SELECT tag, count(*) FROM tags SEMI JOIN facet_r r USING (image_id) "
                           "GROUP BY tag ORDER BY 2 DESC, 1 LIMIT $top", {"top": top}).fetchall()
        keys = cur.execute("SELECT key, count(*) FROM metadata SEMI JOIN facet_r r USING (image_id) "
                           "GROUP BY key ORDER BY 2 DESC, 1").fetchall()
        values = cur.execute(
            "SELECT key, value_type, value_str, value_num, value_bool, count(*) AS n FROM metadata "
            "SEMI JOIN facet_r r USING (image_id) GROUP BY key, value_type, value_str, value_num, value_bool "
            "QUALIFY row_number() OVER (PARTITION BY key ORDER BY n DESC, value_str, value_num, value_bool) <= $top "
            "ORDER BY key, n DESC", {"top": top}).fetchall()
    finally:
        cur.execute("DROP TABLE IF EXISTS facet_r")
    by_key: dict[str, list[tuple[object, int]]] = {}
    for key, vtype, vs, vn, vb, n in values:
        value = vb if vtype == "boolean" else (int(vn) if vn is not None and vn.is_integer() else vn) \
            if vtype == "number" else vs
        by_key.setdefault(key, []).append((value, int(n)))
    return Facets(
        total=int(total),
        categories=[CategoryFacet(name, int(i), int(n)) for name, i, n in cats],
        tags=[(t, int(n)) for t, n in tags],
        metadata=[MetadataFacet(k, int(n), by_key.get(k, [])) for k, n in keys],
        seq=seq,
    )
