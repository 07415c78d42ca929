"""Sets of image ids stored as one compact blob: a bulk edit of 10,000 images is one catalog row,
not 10,000 (sorted, delta-encoded int64, zlib level 1: ~1 byte per id for dense selections)."""

from __future__ import annotations

import zlib
from collections.abc import Iterable

import numpy as np

MAGIC = b"I1"


def as_ids(values: Iterable[int] | np.ndarray) -> np.ndarray:
    """Sorted unique int64 ids (no copy when they already are)."""
    arr = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=np.int64)
    if arr.ndim == 1 and (len(arr) < 2 or bool(np.all(arr[1:] > arr[:-1]))):
        return arr
    return np.unique(arr)


def encode(ids: np.ndarray) -> bytes:
    """`ids` must be sorted and unique (see `as_ids`)."""
    deltas = np.diff(ids, prepend=np.int64(0)) if len(ids) else ids
    return MAGIC + zlib.compress(deltas.astype("<i8", copy=False).tobytes(), 1)


def decode(blob: bytes) -> np.ndarray:
    if blob[:2] != MAGIC:
        raise ValueError("not an id set blob")
    deltas = np.frombuffer(zlib.decompress(blob[2:]), dtype="<i8")
    return np.cumsum(deltas, dtype=np.int64)
