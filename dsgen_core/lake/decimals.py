"""Lossless compact storage of decimal coordinates: scaled int32 when every value allows it.

Annotation tools write boxes, areas and polygon points with a few decimals (COCO and CVAT: usually
two). As float64 they are most of the lake; as int32 x 10^-k with byte-stream-split they take less
than half the space and decode to exactly the same doubles. Columns that do not fit stay float64.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SCALE_KEY_PREFIX = b"dsgen.scale."
# Float columns of the annotations table worth packing: flat ones and the nested polygons.
DECIMAL_COLUMNS = ("bbox_x", "bbox_y", "bbox_w", "bbox_h", "area", "polygons")
_SCALES = (100, 10_000)
_CHUNK = 1 << 20
_LIMIT = 2**31 - 1


def exact_scale(values: np.ndarray) -> int | None:
    """The smallest scale in _SCALES at which every value is an exact int32 multiple, else None."""
    return next((scale for scale in _SCALES if pack(values, scale) is not None), None)


def pack(values: np.ndarray, scale: int) -> np.ndarray | None:
    """values x scale as int32 when that is exact for every value (else None); chunked in threads."""
    out = np.empty(len(values), dtype=np.int32)

    def chunk(start: int) -> bool:
        part = values[start : start + _CHUNK]
        scaled = np.multiply(part, scale)
        np.rint(scaled, out=scaled)
        if np.abs(scaled).max(initial=0) > _LIMIT or not np.array_equal(scaled / scale, part):
            return False
        out[start : start + len(part)] = scaled
        return True

    starts = range(0, len(values), _CHUNK)
    if len(starts) <= 1:
        ok = all(chunk(s) for s in starts)
    else:
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            ok = all(pool.map(chunk, starts))
    return out if ok else None


def scale_key(column: str) -> bytes:
    return SCALE_KEY_PREFIX + column.encode()


def encode_decimals(table: pa.Table) -> pa.Table:
    """Store each DECIMAL_COLUMNS column as scaled int32 (scale in the schema metadata) when lossless."""
    meta = dict(table.schema.metadata or {})
    for name in DECIMAL_COLUMNS:
        if name not in table.column_names or table.num_rows == 0:
            continue
        array = table.column(name).combine_chunks()
        values, rebuild = _leaves(array)
        floats = values.to_numpy(zero_copy_only=False)
        if values.null_count or len(floats) == 0:
            continue
        ints = next(((sc, p) for sc in _SCALES if (p := pack(floats, sc)) is not None), None)
        if ints is None:
            continue
        scale, packed_values = ints
        packed = rebuild(pa.array(packed_values))
        table = table.set_column(table.column_names.index(name), pa.field(name, packed.type), packed)
        meta[scale_key(name)] = str(scale).encode()
    return table.replace_schema_metadata(meta or None)


def decode_decimals(table: pa.Table) -> pa.Table:
    """Undo encode_decimals: back to float64 values identical to the ones written."""
    meta = dict(table.schema.metadata or {})
    for name in DECIMAL_COLUMNS:
        key = scale_key(name)
        if key not in meta:
            continue
        scale = int(meta.pop(key))
        if name not in table.column_names:
            continue
        values, rebuild = _leaves(table.column(name).combine_chunks())
        ints = values.to_numpy(zero_copy_only=False)
        restored = rebuild(pa.array(ints.astype(np.float64) / scale))
        table = table.set_column(table.column_names.index(name), pa.field(name, restored.type), restored)
    return table.replace_schema_metadata(meta or None)


def decimal_scales(schema: pa.Schema) -> dict[str, int]:
    """Which columns of a stored table are packed, and at what scale."""
    meta = schema.metadata or {}
    return {k[len(SCALE_KEY_PREFIX):].decode(): int(v) for k, v in meta.items() if k.startswith(SCALE_KEY_PREFIX)}


def _leaves(array: pa.Array):  # noqa: ANN202 - returns (values, rebuild) pair
    """The innermost values of a (nested) list array, and a function that puts new values back.

    Validity of flat values is carried over; nested lists keep their offsets and null masks."""
    if pa.types.is_list(array.type):
        # Raw child values and offsets: correct for sliced arrays whatever lies under null lists.
        inner, rebuild_inner = _leaves(array.values)

        def rebuild(new: pa.Array) -> pa.Array:
            return pa.ListArray.from_arrays(array.offsets, rebuild_inner(new), mask=array.is_null())

        return inner, rebuild
    if array.null_count:
        valid = array.is_valid()
        filled = pc.fill_null(array, 0.0)

        def rebuild_flat(new: pa.Array) -> pa.Array:
            return pc.if_else(valid, new, pa.scalar(None, new.type))

        return filled, rebuild_flat
    return array, lambda new: new
