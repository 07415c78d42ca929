"""Per-annotation polygon facts (extent, odd and short polygons), straight from the Arrow buffers with numpy.

A million polygon annotations hold tens of millions of coordinates; DuckDB's list lambdas take about a
second over them, numpy's reduceat over the flat coordinate buffer a tenth of that. The checks then run
in SQL over this small table.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

Frame = tuple[float, float, float, float]
POLYGON_STATS_SCHEMA = pa.schema([
    ("annotation_id", pa.int64()), ("image_id", pa.int64()),
    ("x0", pa.float64()), ("y0", pa.float64()), ("x1", pa.float64()), ("y1", pa.float64()),  # null: no points
    ("n_odd", pa.int64()), ("first_odd", pa.int64()),  # polygons of an odd length; the first one's length
    ("n_short", pa.int64()), ("first_short", pa.int64()),  # polygons of < 3 points; the first one's points
])


def _offsets(arr: pa.Array) -> np.ndarray:
    """A list array's offsets as numpy (pyarrow's to_numpy would import pandas)."""
    dtype = np.int64 if pa.types.is_large_list(arr.type) else np.int32
    return np.frombuffer(arr.buffers()[1], dtype=dtype)[arr.offset : arr.offset + len(arr) + 1].astype(np.int64)


def _doubles(arr: pa.Array) -> np.ndarray:
    return np.frombuffer(arr.buffers()[1], dtype=np.float64)[arr.offset : arr.offset + len(arr)]


def _valid(arr: pa.Array) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(arr.buffers()[0], dtype=np.uint8), bitorder="little")
    return bits[arr.offset : arr.offset + len(arr)].astype(bool)


def _column(values: np.ndarray, kind: pa.DataType, valid: np.ndarray | None = None) -> pa.Array:
    """An Arrow array over numpy values, null where `valid` is False (pa.array(ndarray) imports pandas)."""
    values = np.ascontiguousarray(values)
    bitmap = None if valid is None or valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(kind, values.size, [bitmap, pa.py_buffer(values)])


def _per_row(flags: np.ndarray, values: np.ndarray, outer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row's polygons outer[k]:outer[k+1]: how many are flagged, and the value of the first flagged."""
    total = np.concatenate([[0], np.cumsum(flags)])
    count = total[outer[1:]] - total[outer[:-1]]
    flagged = np.flatnonzero(flags)
    first = np.zeros(count.size, dtype=np.int64)
    if flagged.size:
        at = np.minimum(np.searchsorted(flagged, outer[:-1]), flagged.size - 1)
        first = np.where(count > 0, values[flagged[at]], 0)
    return count, first


def _chunk_stats(chunk: pa.Array, rows: pa.Table, inside: Frame | None) -> pa.Table | None:
    outer = _offsets(chunk)
    polygons = chunk.values
    inner = _offsets(polygons)
    if polygons.values.null_count:  # nulls inside polygons are refused by the reader; stay safe
        return None
    listed = outer[1:] > outer[:-1]
    if chunk.null_count:  # a null entry's offsets may still span values
        listed &= _valid(chunk)
    lengths = np.diff(inner)
    odd = lengths % 2 == 1
    n_odd, first_odd = _per_row(odd, lengths, outer)
    n_short, first_short = _per_row(lengths < 6, lengths // 2, outer)
    # extents: the last coordinate of an odd polygon is left out, so the other points still pair up
    coords = _doubles(polygons.values)[inner[0] : inner[-1]]
    starts = inner - inner[0]
    if odd.any():
        keep = np.ones(coords.size, dtype=bool)
        keep[starts[1:][odd] - 1] = False
        coords = coords[keep]
        starts = starts - np.concatenate([[0], np.cumsum(odd)])
    lo, hi = starts[outer[:-1]], starts[outer[1:]]
    with_points = listed & (hi > lo)
    low = np.zeros((outer.size - 1, 2))
    high = np.zeros((outer.size - 1, 2))
    points = coords.reshape(-1, 2)
    if inside is not None and with_points.any() and _all_inside(points, inside):
        with_points[:] = False  # no extent can matter: four passes instead of two reduceat over every row
    if with_points.any():
        at = lo[with_points] // 2
        low[with_points], high[with_points] = (np.minimum.reduceat(points, at, axis=0),
                                               np.maximum.reduceat(points, at, axis=0))
    keep_rows = np.flatnonzero(listed)
    if not keep_rows.size:
        return None
    take = _column(keep_rows.astype(np.int64), pa.int64())
    has = with_points[keep_rows]
    columns = [rows.column("annotation_id").take(take), rows.column("image_id").take(take)]
    columns += [_column(a[keep_rows, i], pa.float64(), has) for a in (low, high) for i in (0, 1)]
    columns += [_column(v[keep_rows], pa.int64()) for v in (n_odd, first_odd, n_short, first_short)]
    return pa.table(columns, schema=POLYGON_STATS_SCHEMA)


def _all_inside(points: np.ndarray, frame: Frame) -> bool:
    x_lo, x_hi, y_lo, y_hi = frame
    xs, ys = points[:, 0], points[:, 1]
    return bool(xs.min() >= x_lo and xs.max() <= x_hi and ys.min() >= y_lo and ys.max() <= y_hi)


def polygon_stats(annotations: pa.Table, inside: Frame | None = None) -> pa.Table:
    """One row per annotation that lists polygons (segmentation: [[…], …]).

    `inside` (x_lo, x_hi, y_lo, y_hi): a frame that no check minds points in; where all points of a chunk of
    rows lie in it, their extents are left null (the usual case, and much cheaper)."""
    parts, offset = [], 0
    for chunk in annotations.column("polygons").chunks:
        part = _chunk_stats(chunk, annotations.slice(offset, len(chunk)), inside)
        offset += len(chunk)
        if part is not None:
            parts.append(part)
    return pa.concat_tables(parts) if parts else POLYGON_STATS_SCHEMA.empty_table()
