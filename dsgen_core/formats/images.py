"""Adding image files to a table builder with their header sizes, and reporting the files that fail."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from dsgen_core.formats.build import TableBuilder
from dsgen_core.formats.headers import HeaderSize, header_sizes, in_chunks
from dsgen_core.validation import ValidationReport

__all__ = ["add_images", "read_texts", "relative_name"]


def relative_name(path: Path | str, root: Path | str) -> str:
    """`path` relative to `root` as a POSIX name (a plain prefix cut when it lies inside, as it does here)."""
    p, r = str(path), str(root).rstrip(os.sep) + os.sep
    rel = p[len(r):] if p.startswith(r) else os.path.relpath(p, root)
    return rel.replace(os.sep, "/")


def read_texts(paths: Sequence[str], workers: int = 1) -> list[str | None]:
    """The text of each file (None when it does not exist), read by a few threads."""

    def one(path: str) -> str | None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            chunks = []
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
        finally:
            os.close(fd)
        return b"".join(chunks).decode("utf-8", errors="replace")

    return in_chunks(one, paths, workers)


def add_images(builder: TableBuilder, paths: Sequence[Path], root: Path,
               report: ValidationReport) -> list[tuple[int, HeaderSize]]:
    """One image row per readable file (file_name relative to `root`); (image id, size) per path,
    id -1 for files whose header could not be read (reported as `image_missing` / `image_corrupt`)."""
    sizes = header_sizes(paths)
    missing, corrupt, rotated = [], [], []
    good: list[int] = []
    names = [relative_name(p, root) for p in paths]
    for k, (name, size) in enumerate(zip(names, sizes, strict=True)):
        if size.error == "missing":
            missing.append(name)
        elif size.error:
            corrupt.append(f"{name}: {size.error}")
        else:
            good.append(k)
            if size.orientation not in (None, 1):
                rotated.append(f"{name}: EXIF orientation {size.orientation}")
    ids = builder.images([names[k] for k in good], [sizes[k].width for k in good], [sizes[k].height for k in good],
                         [sizes[k].orientation for k in good])
    out: list[tuple[int, HeaderSize]] = [(-1, size) for size in sizes]
    for k, image_id in zip(good, ids, strict=True):
        out[k] = (image_id, sizes[k])
    report.error("image_missing", f"images listed but not found on disk (looked in {root})", len(missing), missing)
    report.error("image_corrupt", "image files whose header cannot be read", len(corrupt), corrupt)
    report.warning("exif_rotation", "images carry an EXIF rotation (sizes are taken as displayed)", len(rotated),
                   rotated)
    return out
