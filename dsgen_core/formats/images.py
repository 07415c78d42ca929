"""Adding image files to a table builder with their header sizes, and reporting the files that fail."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from dsgen_core.formats.build import TableBuilder
from dsgen_core.formats.headers import HeaderSize, header_sizes
from dsgen_core.validation import ValidationReport

__all__ = ["add_images", "relative_name"]


def relative_name(path: Path, root: Path) -> str:
    return os.path.relpath(path, root).replace(os.sep, "/")


def add_images(builder: TableBuilder, paths: Sequence[Path], root: Path,
               report: ValidationReport) -> list[tuple[int, HeaderSize]]:
    """One image row per readable file (file_name relative to `root`); (image id, size) per path,
    id -1 for files whose header could not be read (reported as `image_missing` / `image_corrupt`)."""
    sizes = header_sizes(paths)
    out: list[tuple[int, HeaderSize]] = []
    missing, corrupt, rotated = [], [], []
    for path, size in zip(paths, sizes, strict=True):
        name = relative_name(path, root)
        if size.error == "missing":
            missing.append(name)
            out.append((-1, size))
            continue
        if size.error:
            corrupt.append(f"{name}: {size.error}")
            out.append((-1, size))
            continue
        if size.orientation not in (None, 1):
            rotated.append(f"{name}: EXIF orientation {size.orientation}")
        out.append((builder.image(name, size.width, size.height, exif_orientation=size.orientation), size))
    report.error("image_missing", f"images listed but not found on disk (looked in {root})", len(missing), missing)
    report.error("image_corrupt", "image files whose header cannot be read", len(corrupt), corrupt)
    report.warning("exif_rotation", "images carry an EXIF rotation (sizes are taken as displayed)", len(rotated),
                   rotated)
    return out
