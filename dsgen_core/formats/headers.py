"""Image sizes from file headers only (no pixel decoding), EXIF-aware, many files at once.

Readers of normalised formats (YOLO) need each image's real size. The size returned is the image
as displayed: for EXIF orientations 5–8 width and height are swapped, which is what Ultralytics
normalises against (its `exif_size`). Every reader stores that size and the orientation.
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

__all__ = ["HeaderSize", "header_size", "header_sizes", "in_chunks"]

_ORIENTATION_TAG = 274
_SWAPPING = frozenset({5, 6, 7, 8})
_HEAD = 1 << 16  # markers before the frame header (Exif with a thumbnail) fit in 64 KiB


@dataclass(frozen=True)
class HeaderSize:
    width: int | None  # as displayed (EXIF orientation applied)
    height: int | None
    orientation: int | None  # 1..8 when the file carries one
    error: str | None = None


_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _exif_orientation(app1: bytes) -> int | None:
    """The orientation tag of an APP1 Exif payload (IFD0 only, where cameras put it)."""
    if not app1.startswith(b"Exif\0\0") or len(app1) < 14:
        return None
    tiff = app1[6:]
    order = "<" if tiff[:2] == b"II" else ">" if tiff[:2] == b"MM" else None
    if order is None:
        return None
    (ifd,) = struct.unpack(order + "I", tiff[4:8])
    if ifd + 2 > len(tiff):
        return None
    (count,) = struct.unpack(order + "H", tiff[ifd : ifd + 2])
    for k in range(count):
        entry = tiff[ifd + 2 + 12 * k : ifd + 14 + 12 * k]
        if len(entry) < 12:
            return None
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag == _ORIENTATION_TAG and kind == 3:
            (value,) = struct.unpack(order + "H", entry[8:10])
            return value if 1 <= value <= 8 else None
    return None


def _jpeg_size(head: bytes) -> tuple[int, int, int | None] | None:
    """(width, height, orientation) from a JPEG's markers, or None to let Pillow decide."""
    pos, orientation = 2, None
    n = len(head)
    while pos + 4 <= n:
        if head[pos] != 0xFF:
            return None
        marker = head[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        (length,) = struct.unpack(">H", head[pos + 2 : pos + 4])
        if marker in _SOF:
            if pos + 9 > n:
                return None
            h, w = struct.unpack(">HH", head[pos + 5 : pos + 9])
            return (w, h, orientation) if w and h else None
        if marker == 0xE1 and orientation is None:
            orientation = _exif_orientation(head[pos + 4 : pos + 2 + length])
        if marker == 0xDA:
            return None
        pos += 2 + length
    return None


def header_size(path: Path) -> HeaderSize:
    """Never raises: `error` says why a file has no size (missing, not an image, damaged header).

    JPEGs are sized from their markers (SOF and the Exif orientation) without Pillow; anything else,
    or a JPEG whose markers are not where expected, goes through Pillow's lazy open.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
            if head[:3] == b"\xff\xd8\xff":
                got = _jpeg_size(head)
                if got is None and len(head) == 4096:  # a big Exif block first (thumbnail): look further
                    got = _jpeg_size(head + f.read(_HEAD))
                if got is not None:
                    w, h, orientation = got
                    swap = orientation in _SWAPPING
                    return HeaderSize(h, w, orientation) if swap else HeaderSize(w, h, orientation)
    except FileNotFoundError:
        return HeaderSize(None, None, None, "missing")
    except struct.error:
        pass  # a damaged marker: Pillow says what is wrong
    except OSError as exc:
        return HeaderSize(None, None, None, f"unreadable: {type(exc).__name__}: {exc}")
    return _pillow_size(path)


def _pillow_size(path: Path) -> HeaderSize:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                orientation = None
                if "exif" in img.info or img.format in ("TIFF", "MPO"):
                    try:
                        value = img.getexif().get(_ORIENTATION_TAG)
                        orientation = value if isinstance(value, int) and 1 <= value <= 8 else None
                    except Exception:  # a broken EXIF block leaves the stored size
                        orientation = None
    except FileNotFoundError:
        return HeaderSize(None, None, None, "missing")
    except UnidentifiedImageError:
        return HeaderSize(None, None, None, "not an image (unknown format)")
    except Exception as exc:  # OSError, SyntaxError, struct.error … from a damaged header
        return HeaderSize(None, None, None, f"unreadable header: {type(exc).__name__}: {exc}")
    if orientation in _SWAPPING:
        w, h = h, w
    return HeaderSize(w, h, orientation)


def header_sizes(paths: Sequence[Path], workers: int = 1) -> list[HeaderSize]:
    """`header_size` of each path, in input order (threads: the work is file I/O)."""
    return in_chunks(header_size, paths, workers)


def in_chunks(fn: Callable[[Any], Any], items: Sequence[Any], workers: int = 1, size: int = 512) -> list[Any]:
    """`[fn(x) for x in items]`, on a thread pool with one task per chunk when `workers` > 1.

    Files in the page cache read fastest in one thread (measured: threads only add GIL hand-offs);
    slow storage (a NAS) is where callers pass more workers."""
    if workers <= 1 or len(items) <= size:
        return [fn(x) for x in items]
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return [y for part in pool.map(lambda c: [fn(x) for x in c], chunks) for y in part]
