"""The numpy polygon facts agree with a plain Python loop over the same rows, whatever the chunking."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from dsgen_core.importing.polygon_stats import polygon_stats

coordinate = st.floats(-1e4, 1e4, allow_nan=False)
polygon = st.lists(coordinate, min_size=0, max_size=9)  # odd lengths and empty polygons too
row = st.one_of(st.none(), st.lists(polygon, max_size=3))


def naive(rows: list, first: int = 0) -> list[dict]:
    """What polygon_stats should say about rows[first:] (ids 100 + i, image i % 3)."""
    out = []
    for i, polys in enumerate(rows[first:], start=first):
        if not polys:
            continue
        points = [(p[k], p[k + 1]) for p in polys for k in range(0, len(p) - 1, 2)]
        xs, ys = [x for x, _ in points], [y for _, y in points]
        odd = [len(p) for p in polys if len(p) % 2]
        short = [len(p) // 2 for p in polys if len(p) < 6]
        out.append({"annotation_id": 100 + i, "image_id": i % 3,
                    "x0": min(xs, default=None), "y0": min(ys, default=None),
                    "x1": max(xs, default=None), "y1": max(ys, default=None),
                    "n_odd": len(odd), "first_odd": odd[0] if odd else 0,
                    "n_short": len(short), "first_short": short[0] if short else 0})
    return out


def table_of(rows: list, cut: int) -> pa.Table:
    typ = pa.list_(pa.list_(pa.float64()))
    chunks = [pa.array(rows[:cut], typ), pa.array(rows[cut:], typ)]
    return pa.table({"annotation_id": pa.array([100 + i for i in range(len(rows))], pa.int64()),
                     "image_id": pa.array([i % 3 for i in range(len(rows))], pa.int64()),
                     "polygons": pa.chunked_array(chunks, typ)})


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(row, max_size=12), cut=st.integers(0, 12), skip=st.integers(0, 3))
def test_stats_match_a_plain_loop(rows, cut, skip):
    first = min(skip, len(rows))
    table = table_of(rows, min(cut, len(rows))).slice(first)  # sliced arrays carry offsets
    assert polygon_stats(table).to_pylist() == naive(rows, first)


def test_a_cvat_style_example():
    rows = [[[10.5, 20, 30, 20, 30, 40.25, 10, 40]], [], None, [[1, 1, 5, 1, 5, 5], [7, 7, 9, 7, 9, 9, 7, 9]],
            [[1, 2, 3]], [[]]]
    got = [(r["annotation_id"], r["x0"], r["y1"], r["n_odd"], r["n_short"]) for r in
           polygon_stats(table_of(rows, 2)).to_pylist()]
    assert got == [(100, 10.0, 40.25, 0, 0), (103, 1.0, 9.0, 0, 0), (104, 1.0, 2.0, 1, 1), (105, None, None, 0, 1)]


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(row, max_size=10), cut=st.integers(0, 10), size=st.floats(0, 2e4))
def test_extents_are_left_out_only_where_every_point_of_the_chunk_is_inside(rows, cut, size):
    """Facts about odd and short polygons are always there; extents only where a point leaves the frame."""
    cut = min(cut, len(rows))
    frame = (-size, size, -size / 2, size / 2)
    got = polygon_stats(table_of(rows, cut), frame).to_pylist()
    expected = naive(rows)
    assert [(r["annotation_id"], r["n_odd"], r["n_short"]) for r in got] == \
        [(r["annotation_id"], r["n_odd"], r["n_short"]) for r in expected]
    for part, first in ((rows[:cut], 0), (rows[cut:], cut)):
        points = [(p[k], p[k + 1]) for polys in part for p in polys or [] for k in range(0, len(p) - 1, 2)]
        inside = all(-size <= x <= size and -size / 2 <= y <= size / 2 for x, y in points)
        for g, e in zip(got, expected, strict=True):
            if first <= g["annotation_id"] - 100 < first + len(part):
                if inside:
                    assert (g["x0"], g["y0"], g["x1"], g["y1"]) == (None, None, None, None)
                else:
                    assert g == e
