"""Write lake tables as COCO 1.0 JSON (the shape CVAT imports), streaming.

DuckDB renders every record as JSON text (vectorized and in parallel) and the text is written
batch by batch straight from Arrow buffers, so a large dataset never exists as Python dicts.
Only `info`, `licenses` and unknown top-level keys go through orjson. A member whose column is
null is left out, which restores what the reader saw: `segmentation` absent / [] / polygons /
RLE object, `iscrowd` absent or 0/1, the `extra` keys of each record.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, BinaryIO

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from dsgen_core.lake.schema import TABLE_KEYS
from dsgen_core.lake.tables import DatasetTables

__all__ = ["coco_dict", "write_coco"]

_BATCH_ROWS = 50_000
_ARRAY_KEYS = ("images", "annotations", "categories")

# Members of each record in CVAT's order: (JSON key, SQL giving the value as JSON text or NULL).
_MEMBERS: dict[str, tuple[tuple[str, str], ...]] = {
    "categories": (
        ("id", "category_id::VARCHAR"),
        ("name", "to_json(name)::VARCHAR"),
        ("supercategory", "to_json(supercategory)::VARCHAR"),
        ("keypoints", "keypoints"),  # stored as JSON text
        ("skeleton", "skeleton"),
    ),
    "images": (
        ("id", "image_id::VARCHAR"),
        ("width", "width::VARCHAR"),
        ("height", "height::VARCHAR"),
        ("file_name", "to_json(file_name)::VARCHAR"),
        ("license", "license::VARCHAR"),
        ("flickr_url", "to_json(flickr_url)::VARCHAR"),
        ("coco_url", "to_json(coco_url)::VARCHAR"),
        ("date_captured", "to_json(date_captured)::VARCHAR"),
    ),
    "annotations": (
        ("id", "annotation_id::VARCHAR"),
        ("image_id", "image_id::VARCHAR"),
        ("category_id", "category_id::VARCHAR"),
        ("segmentation", "COALESCE(rle, to_json(polygons)::VARCHAR)"),
        ("area", "to_json(area)::VARCHAR"),
        (
            "bbox",
            "CASE WHEN NOT (bbox_x IS NULL AND bbox_y IS NULL AND bbox_w IS NULL AND bbox_h IS NULL)"
            " THEN to_json([bbox_x, bbox_y, bbox_w, bbox_h])::VARCHAR END",
        ),
        ("iscrowd", "iscrowd::INTEGER::VARCHAR"),
        ("attributes", "attributes"),  # stored as JSON text
        ("keypoints", "to_json(keypoints)::VARCHAR"),
        ("num_keypoints", "num_keypoints::VARCHAR"),
        ("score", "to_json(score)::VARCHAR"),
    ),
}


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# Members that may hold a NaN or an infinity (numbers, or JSON text kept from the source).
_MAY_BE_NONFINITE = {"keypoints", "skeleton", "segmentation", "area", "bbox", "attributes", "score"}


def _finite_json(text: str) -> str:
    """JSON text with every NaN/Infinity (which DuckDB writes, strict parsers refuse) replaced by null."""
    return orjson.dumps(json.loads(text)).decode()  # json reads NaN/Infinity; orjson writes them as null


def _register_macros(con: duckdb.DuckDBPyConnection) -> None:
    """`finite_json(t)`: t itself unless it holds 'NaN' or 'Infinity' (cheap to test), else rewritten in Python;
    `object_members(t)`: a JSON object's text without its braces, to splice into another object."""
    con.create_function("py_finite_json", _finite_json, ["VARCHAR"], "VARCHAR")
    con.execute("CREATE MACRO finite_json(t) AS CASE WHEN contains(t, 'NaN') OR contains(t, 'Infinity') "
                "THEN py_finite_json(t) ELSE t END")
    con.execute("CREATE MACRO object_members(t) AS NULLIF(substr(t, 2, length(t) - 2), '')")  # '{a, b}' -> 'a, b'


def _record_sql(name: str, ordered: bool) -> str:
    """SQL rendering each row of view `name` as `,{...}` (the writer drops the very first comma)."""
    parts = [f"{_sql_str(orjson.dumps(key).decode() + ':')} || "
             + (f"finite_json({expr})" if key in _MAY_BE_NONFINITE else f"({expr})") for key, expr in _MEMBERS[name]]
    # `extra` is a JSON object: splice its members in after the known ones.
    parts.append("object_members(finite_json(json(extra)::VARCHAR))")
    order = "" if ordered else f" ORDER BY {TABLE_KEYS[name]}"
    return f"SELECT ',{{' || concat_ws(',', {', '.join(parts)}) || '}}' AS j FROM {name}{order}"  # noqa: S608


def _text_of(arr: pa.Array) -> memoryview:
    """The concatenated bytes of a string array, straight from its data buffer."""
    if arr.type not in (pa.string(), pa.large_string()):
        arr = arr.cast(pa.large_string())
    offsets_type = np.int32 if arr.type == pa.string() else np.int64
    _validity, offsets_buf, data = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=offsets_type)[arr.offset : arr.offset + len(arr) + 1]
    if data is None or not len(arr):
        return memoryview(b"")
    return memoryview(data)[int(offsets[0]) : int(offsets[-1])]


def _is_sorted(table: pa.Table, key: str) -> bool:
    ids = table.column(key)
    if table.num_rows < 2:
        return True
    return bool(pc.all(pc.less(ids.slice(0, table.num_rows - 1), ids.slice(1))).as_py())


def _write_records(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table, out: BinaryIO) -> None:
    """Stream one table's records, sorted by id, as comma-separated JSON objects."""
    con.register(name, table)
    reader = con.sql(_record_sql(name, _is_sorted(table, TABLE_KEYS[name]))).to_arrow_reader(_BATCH_ROWS)
    first = True
    for batch in reader:
        text = _text_of(batch.column(0))
        if first and len(text):
            text, first = text[1:], False
        out.write(text)
    con.unregister(name)


def _header(meta: dict[str, Any]) -> bytes:
    """`licenses`, `info` and any unknown top-level keys, each followed by a comma."""
    head: dict[str, Any] = {}
    for key in ("licenses", "info"):
        if key in meta:
            head[key] = meta[key]
    for key, value in (meta.get("extra_top_level") or {}).items():
        if key not in head and key not in _ARRAY_KEYS:
            head[key] = value
    return b"".join(orjson.dumps(k) + b":" + orjson.dumps(v) + b"," for k, v in head.items())


def _write(tables: DatasetTables, out: BinaryIO) -> None:
    tables = tables.conformed()
    con = duckdb.connect()
    try:
        con.execute(f"SET threads={os.cpu_count() or 1}")
        _register_macros(con)
        out.write(b"{" + _header(tables.meta))
        for i, name in enumerate(("categories", "images", "annotations")):
            out.write((b"," if i else b"") + orjson.dumps(name) + b":[")
            _write_records(con, name, tables.table(name), out)
            out.write(b"]")
        out.write(b"}")
    finally:
        con.close()


def write_coco(tables: DatasetTables, out_path: Path) -> None:
    """Write `tables` as a COCO JSON file (records sorted by id); replaces `out_path` atomically."""
    out_path = Path(out_path)
    tmp = out_path.with_name(out_path.name + ".part")
    try:
        with open(tmp, "wb") as f:
            _write(tables, f)
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)


def coco_dict(tables: DatasetTables) -> dict[str, Any]:
    """The COCO document as a dict (for small datasets and tests)."""
    out = io.BytesIO()
    _write(tables, out)
    return orjson.loads(out.getvalue())
