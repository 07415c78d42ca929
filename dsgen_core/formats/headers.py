"""Image sizes from file headers only (no pixel decoding), EXIF-aware, many files at once.

Readers of normalised formats (YOLO) need each image's real size. The size returned is the image
as displayed: for EXIF orientations 5–8 width and height are swapped, which is what Ultralytics
normalises against (its `exif_size`). Every reader stores that size and the orientation.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

__all__ = ["HeaderSize", "header_size", "header_sizes"]

_ORIENTATION_TAG = 274
_SWAPPING = frozenset({5, 6, 7, 8})


@dataclass(frozen=True)
class HeaderSize:
    width: int | None  # as displayed (EXIF orientation applied)
    height: int | None
    orientation: int | None  # 1..8 when the file carries one
    error: str | None = None


def header_size(path: Path) -> HeaderSize:
    """Never raises: `error` says why a file has no size (missing, not an image, damaged header)."""
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


def header_sizes(paths: Sequence[Path], workers: int = 8) -> list[HeaderSize]:
    """`header_size` of each path, in input order (threads: the work is file I/O)."""
    if len(paths) < 64:
        return [header_size(p) for p in paths]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(header_size, paths, chunksize=256))
