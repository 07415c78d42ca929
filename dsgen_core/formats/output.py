"""Writing an export folder: built beside its destination and moved into place whole, images linked or copied.

Image bytes are never re-encoded: a hard link, a symbolic link or a byte copy of the source file.
A write that fails leaves no half-written destination behind.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from dsgen_core.formats.base import (
    ConversionRefused,
    ConversionReport,
    ImageMode,
    Split,
    WriteOptions,
)
from dsgen_core.validation import MAX_EXAMPLES

__all__ = ["ExportBase", "check_sources", "image_sources", "place_images", "refuse_if_needed", "staged"]


def image_sources(split: Split) -> list[Path | None]:
    """Where each image row's bytes are: `images_root/file_name`, else a `file://` uri, else None."""
    names = split.tables.images.column("file_name").to_pylist()
    uris = split.tables.images.column("uri").to_pylist()
    out: list[Path | None] = []
    for name, uri in zip(names, uris, strict=True):
        if split.images_root is not None:
            out.append(split.images_root / name)
        elif uri and uri.startswith("file://"):
            out.append(Path(unquote(urlparse(uri).path)))
        else:
            out.append(None)
    return out


def check_sources(splits: Sequence[Split], options: WriteOptions, report: ConversionReport) -> None:
    """With images to write, every image must have bytes on disk (else the export would be partial)."""
    if options.images is ImageMode.NONE:
        return
    missing = []
    for s in splits:
        for name, src in zip(s.tables.images.column("file_name").to_pylist(), image_sources(s), strict=True):
            if src is None or not src.is_file():
                missing.append(f"{s.name}: {name}")
    if missing:
        report.problems.append(
            f"{len(missing)} image(s) have no file to write (e.g. {', '.join(missing[:MAX_EXAMPLES])}); "
            "export labels only (images: none) or give the images folder"
        )


def refuse_if_needed(report: ConversionReport, options: WriteOptions) -> None:
    if report.problems or (report.lossy and not options.allow_lossy):
        raise ConversionRefused(report)


@contextmanager
def staged(dest: Path) -> Iterator[Path]:
    """A temporary sibling folder to write into; moved to `dest` on success, removed on failure."""
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise FileExistsError(f"{dest}: already exists and is not an empty folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if dest.exists():
            dest.rmdir()
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _placer(mode: ImageMode) -> Callable[[Path, Path], bool]:
    """A function placing one file; returns False when a hard link had to become a copy."""

    def hardlink(src: Path, dst: Path) -> bool:
        try:
            os.link(src, dst)
            return True
        except OSError:  # other file system, or links not allowed: same bytes by copy
            shutil.copyfile(src, dst)
            return False

    def symlink(src: Path, dst: Path) -> bool:
        os.symlink(os.path.abspath(src), dst)
        return True

    def copy(src: Path, dst: Path) -> bool:
        shutil.copyfile(src, dst)
        return True

    return {ImageMode.HARDLINK: hardlink, ImageMode.SYMLINK: symlink, ImageMode.COPY: copy}[mode]


def place_images(pairs: Sequence[tuple[Path, Path]], mode: ImageMode, report: ConversionReport) -> int:
    """Link or copy each (source, destination); returns the number placed."""
    if mode is ImageMode.NONE or not pairs:
        return 0
    for parent in {dst.parent for _, dst in pairs}:
        parent.mkdir(parents=True, exist_ok=True)
    place = _placer(mode)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda p: place(*p), pairs, chunksize=256))
    copied = results.count(False)
    if copied:
        report.notes.append(f"{copied} image(s) copied: hard links are not possible across file systems")
    return len(results)


class ExportBase:
    """The plan → refuse → write-into-a-staged-folder sequence every writer shares.

    A format declares the features it `carries`, adds its own findings in `check`, and writes in
    `write_into`, which returns the `written` counts.
    """

    name: str = ""
    carries: frozenset[str] = frozenset()
    numbers_classes = True  # index- or name-based targets: record the class map
    needs_images = False  # the export is made of its images (ImageFolder, unlabeled)

    def carried(self, splits: Sequence[Split], options: WriteOptions) -> set[str]:
        return set(self.carries)

    def extra_losses(self) -> dict[str, tuple[str, str]] | None:
        return None

    def check(self, splits: Sequence[Split], options: WriteOptions, report: ConversionReport) -> None:
        """Format-specific losses, problems and notes."""

    def plan(self, splits: Sequence[Split], options: WriteOptions) -> ConversionReport:
        from dsgen_core.formats.classmap import class_map
        from dsgen_core.formats.inventory import report_losses

        report = ConversionReport(self.name)
        if self.numbers_classes:
            class_map(splits, options, report)
        report_losses(report, splits, self.carried(splits, options), self.extra_losses())
        self.check(splits, options, report)
        if self.needs_images and options.images is ImageMode.NONE:
            report.problems.append(f"a {self.name} export is its images: choose hardlink, symlink or copy")
        check_sources(splits, options, report)
        return report

    def write(self, splits: Sequence[Split], dest: Path, options: WriteOptions) -> ConversionReport:
        from dsgen_core.formats.classmap import class_map

        report = self.plan(splits, options)
        refuse_if_needed(report, options)
        cmap = class_map(splits, options, ConversionReport(self.name)) if self.numbers_classes else None
        with staged(dest) as out:
            report.written = self.write_into(out, splits, options, cmap, report)
        return report

    def write_into(self, out: Path, splits: Sequence[Split], options: WriteOptions, cmap: Any,
                   report: ConversionReport) -> dict[str, int]:
        raise NotImplementedError
