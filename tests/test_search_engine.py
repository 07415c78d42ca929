"""The search engine over a real version (Parquet lake + curation rows in the catalog): every DSL
form of tests/test_query_dsl.py gives the plain-Python reference answer, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from test_curation_support import curate_like_dsl_tests, curation_api, make_version
from test_query_dsl import CASES, METADATA_KEYS, REF

from dsgen_core.errors import InvalidRequest
from dsgen_core.query import QueryError

# The engine's images all carry the version's split ("train"); everything else is as in the DSL data.
ENGINE_REF = [{**im, "split": "train"} for im in REF]


def expected(pred: Callable[[dict[str, Any]], bool]) -> set[int]:
    return {im["id"] for im in ENGINE_REF if pred(im)}


@pytest.fixture
def curated(api, admin):
    cur = curation_api(api)
    vid = make_version(api, admin.id)
    curate_like_dsl_tests(cur, admin, vid)
    other = make_version(api, admin.id, group="other")  # same image ids, other curation rows
    cur.add_tags(admin, other, 4, ["car", "v2only"])
    cur.set_metadata(admin, other, 4, {"color": "red", "speed": 99.0})
    return cur, vid


def test_every_dsl_form_matches_the_reference(curated, admin):
    """One test over all cases: a fresh catalog per case would make PostgreSQL runs slow."""
    cur, vid = curated
    failures = []
    for query, pred in CASES:
        page = cur.search_images(admin, vid, query, order_by="image_id", limit=1000)
        if set(page.image_ids) != expected(pred) or page.total != len(page.image_ids):
            failures.append((query, sorted(page.image_ids), sorted(expected(pred))))
    assert failures == []


def test_bare_metadata_keys_come_from_the_curation_rows(curated, admin):
    cur, vid = curated
    assert set(cur.metadata_keys(admin, vid)) == set(METADATA_KEYS)
    page = cur.search_images(admin, vid, "color:red OR weather:sun", order_by="image_id")
    assert page.image_ids == [1, 7]
    assert cur.search_images(admin, vid, "camera:cam-1").image_ids == [7]


def test_sorting_paging_and_snapshot_seq(curated, admin):
    cur, vid = curated
    page = cur.search_images(admin, vid, "", order_by="file_name", limit=3)
    by_file = [im["id"] for im in sorted(REF, key=lambda im: im["file"])]
    assert page.image_ids == by_file[:3] and page.total == len(REF)
    assert cur.search_images(admin, vid, "", order_by="file_name", descending=True).image_ids == by_file[::-1]
    assert cur.search_images(admin, vid, "", order_by="boxes", descending=True, limit=1).image_ids == [1]
    assert cur.search_images(admin, vid, "", order_by="metadata.speed", descending=True, limit=3).image_ids == [1, 3, 2]
    assert cur.search_images(admin, vid, "", order_by="image_id", limit=3, offset=2).image_ids == [3, 4, 5]
    assert cur.search_images(admin, vid, "", order_by="image_id", offset=50).image_ids == []
    assert page.seq == cur.curation_seq(admin, vid) > 0
    with pytest.raises(InvalidRequest, match="cannot sort by"):
        cur.search_images(admin, vid, "", order_by="file_name; DROP TABLE images")


def test_edits_are_searchable_at_once(curated, admin):
    cur, vid = curated
    assert cur.search_images(admin, vid, "tag:fresh").total == 0
    first = cur.search_images(admin, vid, "", order_by="image_id")
    first.image_ids.clear()  # a caller's copy: the remembered answer is not touched
    assert cur.search_images(admin, vid, "", order_by="image_id").image_ids[:2] == [1, 2]
    cur.add_tags(admin, vid, 5, "fresh")
    assert cur.search_images(admin, vid, "tag:fresh").image_ids == [5]
    cur.set_metadata(admin, vid, 5, {"speed": 12.5, "reviewed": True})
    assert cur.search_images(admin, vid, "metadata.speed<13 metadata.reviewed:true").image_ids == [5]
    cur.remove_tags(admin, vid, 5, "fresh")
    cur.delete_metadata(admin, vid, 5, "speed")
    assert cur.search_images(admin, vid, "tag:fresh OR metadata.speed<13").total == 0


def test_facets_follow_the_query(curated, admin):
    cur, vid = curated
    f = cur.search_facets(admin, vid, "tag:car")
    assert f.total == 3
    assert {c.name: (c.images, c.instances) for c in f.categories} == {"person": (2, 4), "car": (2, 2)}
    assert f.tags == [("car", 3), ("night", 1), ("rainy day", 1)]
    meta = {m.key: (m.images, m.top_values) for m in f.metadata}
    assert meta["color"] == (2, [("blue", 1), ("red", 1)])
    assert meta["speed"][0] == 2 and sorted(meta["speed"][1]) == [(30, 1), (55, 1)]
    assert meta["reviewed"] == (1, [(True, 1)])
    everything = cur.search_facets(admin, vid, "", top=1)
    assert everything.total == 10 and everything.tags == [("car", 3)]
    # category terms compile to precomputed count columns: facets must take only the parameters used
    for query in ("category:person", "category:person>=2", "category:car tag:car"):
        assert cur.search_facets(admin, vid, query).total == cur.search_images(admin, vid, query).total


def test_bad_queries_say_where(curated, admin):
    cur, vid = curated
    with pytest.raises(QueryError, match="at 0: unknown field 'widht'"):
        cur.search_images(admin, vid, "widht>3")
    assert cur.search_images(admin, vid, 'tag:"x\'; DROP TABLE images; --"').total == 0
    assert cur.search_images(admin, vid, "").total == 10


# -- the array path (masks + sorted positions) against the compiled SQL path ------------------------
SORTS = [("file_name", False), ("file_name", True), ("boxes", True), ("width", False), ("height", True),
         ("image_id", True), ("metadata.speed", False), ("metadata.speed", True), ("metadata.code", False),
         ("metadata.code", True), ("metadata.reviewed", True), ("metadata.nokey", False)]


def sql_page(engine, query: str, order_by: str, descending: bool, limit: int, offset: int) -> tuple[int, list[int]]:
    from dsgen_core.query import page_sql
    from dsgen_core.search import service

    compiled = service.compile_for(engine, query)
    sql, params = page_sql(compiled, order_by, descending, limit, offset, sort_columns=service.SORT_COLUMNS)
    ((total, ids),) = engine.fetchall(sql, params)
    return int(total), [int(i) for i in ids]


def test_array_path_answers_as_the_sql_path(curated, admin):
    """Every DSL case, under every sort key (metadata keys holding mixed types and gaps included)."""
    from dsgen_core.search import service

    cur, vid = curated
    cur.set_metadata(admin, vid, 3, {"code": 17})  # one key holding a number, texts and nothing
    cur.set_metadata(admin, vid, 6, {"code": True})
    engine = cur._engine(admin, vid)
    failures = []
    for query, _ in CASES:
        for order_by, desc in SORTS:
            engine.forget()
            page = service.search_page(engine, query, order_by, desc, limit=4, offset=1)
            want = sql_page(engine, query, order_by, desc, 4, 1)
            if (page.total, page.image_ids) != want:
                failures.append((query, order_by, desc, (page.total, page.image_ids), want))
    assert failures == []


LEAVES = [q for q, _ in CASES if q.strip()]


def test_array_path_combinations_answer_as_the_sql_path(curated, admin):
    """Random AND/OR/NOT trees of the DSL cases: the two paths never disagree."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from dsgen_core.search import service

    cur, vid = curated
    engine = cur._engine(admin, vid)
    leaf = st.sampled_from(LEAVES).map(lambda q: f"({q})")
    tree = st.recursive(leaf, lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda p: f"({p[0]} {p[1]})"),
        st.tuples(inner, inner).map(lambda p: f"({p[0]} OR {p[1]})"),
        inner.map(lambda q: f"NOT {q}")), max_leaves=5)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(tree, st.sampled_from(SORTS))
    def check(query: str, sort: tuple[str, bool]) -> None:
        try:
            want = sql_page(engine, query, sort[0], sort[1], 5, 0)
        except QueryError:
            return  # e.g. a count comparison inside NOT is fine, but some leaves only compile alone
        engine.forget()
        page = service.search_page(engine, query, sort[0], sort[1], limit=5, offset=0)
        assert (page.total, page.image_ids) == want, query

    check()


def test_array_path_survives_the_fuzz_vocabulary(curated, admin):
    """The fuzz test's token soup, through the engine: every query either is refused with a QueryError or
    gives the SQL path's answer (never a crash in the evaluator)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from test_query_fuzz import VOCAB

    from dsgen_core.search import service

    cur, vid = curated
    engine = cur._engine(admin, vid)

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(st.lists(st.tuples(st.sampled_from(VOCAB), st.sampled_from(["", "", " "])), max_size=14))
    def check(parts: list[tuple[str, str]]) -> None:
        query = "".join(token + sep for token, sep in parts)
        try:
            want = sql_page(engine, query, "file_name", False, 5, 0)
        except QueryError:
            return
        engine.forget()
        page = service.search_page(engine, query, "file_name", False, limit=5, offset=0)
        assert (page.total, page.image_ids) == want, query

    check()


def test_answers_are_remembered_by_the_bound_query_not_its_spelling(curated, admin):
    from dsgen_core.search import service

    cur, vid = curated
    engine = cur._engine(admin, vid)
    engine.forget()
    first = service.search_page(engine, "tag:car  width>0", "file_name", False, 5, 0)
    remembered = len(engine._memo)
    again = service.search_page(engine, " tag:car AND Width>0", "file_name", False, 5, 0)
    assert (again.total, again.image_ids) == (first.total, first.image_ids)
    assert len(engine._memo) == remembered
    service.search_page(engine, "tag:car width>1", "file_name", False, 5, 0)
    assert len(engine._memo) == remembered + 1
