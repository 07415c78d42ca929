"""Fuzzing the DSL: any input either raises QueryError or compiles to SQL that DuckDB runs."""

from __future__ import annotations

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_query_dsl import METADATA_KEYS, build_db

from dsgen_core.query import QueryError, compile_query, images_sql

CON: duckdb.DuckDBPyConnection = build_db()
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VOCAB = [
    # fields
    "tag:", "tags:", "TAG:", "category:", "categories:", "supercategory:", "metadata.color:", "metadata.speed",
    "metadata.", "color:", "speed", "has:", "width", "height", "file:", "split:", "boxes", "sha:", "id:",
    "bbox.area", "bbox.w", "bbox.h", "bbox.aspect", "bbox.x", "area", "iscrowd:", "attr.occluded:", "attr.color",
    "attr.", "is_machine:", "score", "type:", "source:", "ann:(", "ann:", "ann", "widht", "and:", "has:attr.x",
    # operators and keywords
    "(", ")", "-", "NOT", "not", "AND", "and", "OR", "Or", ":", ">", ">=", "<", "<=", "=", "!=", "!", "..",
    # values
    "car", "person", "none", "any", "true", "FALSE", "3", "-1.5", "0", ".5", "1e3", "1e999",
    "99999999999999999999", "640..1280", "..5", "5..", "-3..-1", "*night*", "a?b", '"', '"rainy day"',
    '"x\\"y"', "\\", "metadata.weather", "attr.rotation", "tags", "annotations", "'", ";", "%", "_", "\x00", "é",
]  # fmt: skip


def check(text: str) -> None:
    """Compile `text`; if it compiles, both the WHERE and the gallery SELECT must execute."""
    try:
        compiled = compile_query(text, METADATA_KEYS)
    except QueryError as err:
        assert err.position >= 0 and err.expected
        return
    sql = f"SELECT count(*) FROM images i WHERE {compiled.where}"  # noqa: S608 - compiled SQL under test
    CON.execute(sql, compiled.params).fetchall()
    for order_by in ("file_name", "metadata.speed"):
        gallery, params = images_sql(compiled, order_by, descending=True, limit=5, offset=1, version_id=1)
        CON.execute(gallery, params).fetchall()


@FUZZ
@given(st.text(max_size=80))
def test_random_text(text: str) -> None:
    check(text)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(VOCAB), st.sampled_from(["", "", " "])), max_size=14))
def test_token_soup(parts: list[tuple[str, str]]) -> None:
    check("".join(token + sep for token, sep in parts))


FIELD = st.sampled_from(
    ["tag", "category", "metadata.speed", "metadata.color", "width", "file", "bbox.area", "attr.occluded", "score",
     "iscrowd", "sha", "id", "split", "boxes", "speed", "categories", "tags", "has"]
)  # fmt: skip
OP = st.sampled_from([":", "=", "!=", ">", ">=", "<", "<="])
VALUE = st.one_of(
    st.sampled_from(["car", "none", "true", "false", "metadata.speed", "attr.color", "*a*", "1..2"]),
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.text(max_size=8).map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'),
)
TERM = st.builds(lambda neg, f, op, v: ("-" if neg else "") + f + op + v, st.booleans(), FIELD, OP, VALUE)


def _expr(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    joined = st.lists(children, min_size=1, max_size=3)
    return st.one_of(
        st.builds(lambda xs, glue: glue.join(xs), joined, st.sampled_from([" ", " AND ", " or "])),
        children.map(lambda x: f"NOT ({x})"),
        children.map(lambda x: f"ann:({x})"),
    )


@FUZZ
@given(st.recursive(TERM, _expr, max_leaves=8))
def test_well_formed_expressions(text: str) -> None:
    check(text)
