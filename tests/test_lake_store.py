"""The lake's on-disk form: exact polygon storage, sorted writes, and a content hash that is canonical."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dsgen_core.lake.decimals import decode_decimals, encode_decimals, exact_scale, scale_key
from dsgen_core.lake.schema import TABLE_SCHEMAS
from dsgen_core.lake.store import content_hash, read_tables, write_tables
from dsgen_core.lake.tables import DatasetTables

POLY_TYPE = pa.list_(pa.list_(pa.float64()))


def blank(schema: pa.Schema, n: int) -> dict[str, pa.Array]:
    """Nulls where allowed, zero values in the non-nullable columns."""
    out = {}
    for f in schema:
        if f.nullable:
            out[f.name] = pa.nulls(n, f.type)
        elif pa.types.is_string(f.type):
            out[f.name] = pa.array([""] * n, f.type)
        elif pa.types.is_boolean(f.type):
            out[f.name] = pa.array([False] * n, f.type)
        else:
            out[f.name] = pa.array([0] * n, f.type)
    return out


def tables_with(polygons: list, ids: list[int] | None = None, score: pa.Array | None = None) -> DatasetTables:
    n = len(polygons)
    ids = ids or list(range(1, n + 1))
    ann = blank(TABLE_SCHEMAS["annotations"], n)
    ann["annotation_id"] = pa.array(ids, pa.int64())
    ann["image_id"] = pa.array([1] * n, pa.int64())
    ann["category_id"] = pa.array([1] * n, pa.int64())
    ann["polygons"] = pa.array(polygons, POLY_TYPE)
    if score is not None:
        ann["score"] = score
    images = blank(TABLE_SCHEMAS["images"], 1)
    images.update(image_id=pa.array([1], pa.int64()), file_name=pa.array(["a.jpg"]),
                  width=pa.array([64], pa.int32()), height=pa.array([48], pa.int32()))
    cats = blank(TABLE_SCHEMAS["categories"], 1)
    cats.update(category_id=pa.array([1], pa.int64()), name=pa.array(["car"]))
    return DatasetTables(images=pa.table(images).cast(TABLE_SCHEMAS["images"]),
                         annotations=pa.table(ann).cast(TABLE_SCHEMAS["annotations"]),
                         categories=pa.table(cats).cast(TABLE_SCHEMAS["categories"]), meta={"info": {"x": 1}})


def test_two_decimal_polygons_are_stored_as_scaled_ints_and_read_back_bit_exact(tmp_path):
    polys = [[[10.25, 3.5, 11.0, 4.75, 0.01, 639.99]], None, [], [[1.0, 2.0, 3.0, 4.0], [5.5, 6.5, 7.5, 8.5]]]
    t = tables_with(polys)
    write_tables(t, tmp_path)
    stored = pq.read_schema(tmp_path / "annotations.parquet")
    assert stored.field("polygons").type == pa.list_(pa.list_(pa.int32()))
    assert stored.metadata[scale_key("polygons")] == b"100"
    back = read_tables(tmp_path).annotations
    assert back.schema.field("polygons").type == POLY_TYPE
    assert back.column("polygons").to_pylist() == polys
    assert content_hash(read_tables(tmp_path)) == content_hash(t)


def test_polygons_that_are_not_short_decimals_stay_float64(tmp_path):
    polys = [[[0.1 + 0.2, 1 / 3, 5.0, 6.0]]]
    write_tables(tables_with(polys), tmp_path)
    assert pq.read_schema(tmp_path / "annotations.parquet").field("polygons").type == POLY_TYPE
    assert read_tables(tmp_path).annotations.column("polygons").to_pylist() == polys


@pytest.mark.parametrize(("values", "scale"), [
    ([1.0, 2.0], 100), ([1.25, 700.5], 100), ([1.2345, 3.0], 10_000), ([1e-7], None), ([3e8], None),
    ([float("nan")], None),
])
def test_exact_scale(values, scale):
    assert exact_scale(np.array(values)) == scale


def test_encode_decode_of_a_sliced_table_keeps_rows_aligned():
    t = tables_with([[[1.5, 2.5]], [[3.25, 4.25]], None, [[5.0, 6.0, 7.0, 8.0]]]).annotations.slice(1, 3)
    back = decode_decimals(encode_decimals(t))
    assert back.column("polygons").to_pylist() == [[[3.25, 4.25]], None, [[5.0, 6.0, 7.0, 8.0]]]


def test_lake_rows_are_sorted_by_key_whatever_the_input_order(tmp_path):
    write_tables(tables_with([[[1.0, 1.0]], [[2.0, 2.0]], [[3.0, 3.0]]], ids=[30, 10, 20]), tmp_path)
    back = read_tables(tmp_path).annotations
    assert back.column("annotation_id").to_pylist() == [10, 20, 30]
    assert back.column("polygons").to_pylist() == [[[2.0, 2.0]], [[3.0, 3.0]], [[1.0, 1.0]]]


def test_hash_ignores_what_lies_under_nulls_but_not_which_slots_are_null():
    def score(under_null: float, valid: list[bool]) -> pa.Array:
        values = np.array([0.5, under_null, 0.75])
        bitmap = pa.py_buffer(np.packbits(np.array(valid), bitorder="little").tobytes())
        return pa.Array.from_buffers(pa.float64(), 3, [bitmap, pa.py_buffer(values.tobytes())])

    polys = [[[1.0, 2.0]]] * 3
    a = tables_with(polys, score=score(123.0, [True, False, True]))
    b = tables_with(polys, score=score(-9.0, [True, False, True]))
    c = tables_with(polys, score=score(0.0, [True, True, True]))
    assert content_hash(a) == content_hash(b)
    assert content_hash(a) != content_hash(c)


def test_hash_follows_content_not_input_order():
    a = tables_with([[[1.0, 1.0]], [[2.0, 2.0]]], ids=[1, 2])
    b = DatasetTables(images=a.images, annotations=a.annotations.take([1, 0]), categories=a.categories, meta=a.meta)
    changed = tables_with([[[1.0, 1.0]], [[2.0, 2.01]]], ids=[1, 2])
    assert content_hash(a) == content_hash(b)
    assert content_hash(a) != content_hash(changed)


def test_boxes_and_areas_with_nulls_round_trip_through_scaled_ints(tmp_path):
    t = tables_with([None, None, None])
    i = t.annotations.column_names.index("bbox_x")
    t.annotations = t.annotations.set_column(i, "bbox_x", pa.array([12.5, None, 639.99], pa.float64()))
    j = t.annotations.column_names.index("area")
    t.annotations = t.annotations.set_column(j, "area", pa.array([0.1 + 0.2, 4.0, None], pa.float64()))
    write_tables(t, tmp_path)
    stored = pq.read_schema(tmp_path / "annotations.parquet")
    assert stored.field("bbox_x").type == pa.int32()
    assert stored.field("area").type == pa.float64()  # 0.30000000000000004 is not a short decimal
    back = read_tables(tmp_path).annotations
    assert back.column("bbox_x").to_pylist() == [12.5, None, 639.99]
    assert back.column("area").to_pylist() == [0.1 + 0.2, 4.0, None]
    assert content_hash(read_tables(tmp_path)) == content_hash(t)
