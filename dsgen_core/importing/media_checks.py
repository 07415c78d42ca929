"""Matching listed images to files on disk, probing them, and storing their bytes."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from dsgen_core.importing.image_files import (
    AMBIGUOUS,
    IMAGE_EXTENSIONS,
    OUTSIDE,
    SPECIAL,
    ArchiveImages,
    FolderImages,
    Found,
)
from dsgen_core.importing.sources import normalize_file_name
from dsgen_core.media import ImageProbe
from dsgen_core.storage import Storage, file_uri
from dsgen_core.validation import ValidationReport

ROTATING_ORIENTATIONS = {5, 6, 7, 8}

Progress = Callable[[int, int], None]


@dataclass
class MediaResult:
    """Per image row (same order as the images table): its file on disk and what the probe saw."""

    paths: list[Path | None]
    probes: list[ImageProbe | None]


def check_media(
    images: pa.Table, files: FolderImages | ArchiveImages, report: ValidationReport,
    progress: Progress | None = None, workers: int = 8, extract_to: Path | None = None,
) -> MediaResult:
    """Match the listed file names to files (NFC), probe them, and report what is wrong with each.
    From an archive, `extract_to` extracts the listed images (an import); without it they are probed in
    memory (a check writes nothing)."""
    names = images.column("file_name").to_pylist()
    ids = images.column("image_id").to_pylist()
    keys = [normalize_file_name(n) if isinstance(n, str) else None for n in names]
    listed = {k for k in keys if k}
    files.prepare(listed)
    index = files.images()
    found: list[Found | None] = []
    problems: dict[str, list[str]] = {c: [] for c in (
        "bad_file_name", "image_missing", "image_not_a_file", "image_outside_root", "image_hidden")}
    for image_id, name, key in zip(ids, names, keys, strict=True):
        f = (index.get(key) or files.find(key)) if key else None
        problem = _problem(image_id, name, key, f, files.label)
        if problem is not None:
            problems[problem[0]].append(problem[1])
        found.append(f if problem is None or problem[0] == "image_hidden" else None)
    for code, (severity, message) in _FINDINGS.items():
        report.add(code, severity, message, len(problems[code]), problems[code])
    unlisted = sorted(k for k in index if k not in listed)
    report.warning("image_unlisted", "image files on disk that the annotations do not list (not imported)",
                   len(unlisted), unlisted)

    present = [(i, f) for i, f in enumerate(found) if f is not None]
    got_paths, got_probes = files.probe([f for _, f in present], progress, workers, extract_to)
    paths: list[Path | None] = [None] * len(found)
    probes: list[ImageProbe | None] = [None] * len(found)
    for (i, _), path, probe in zip(present, got_paths, got_probes, strict=True):
        paths[i], probes[i] = path, probe
    _report_probes(images, keys, found, probes, report)
    report.stats["images_on_disk"] = len(index)
    return MediaResult(paths=paths, probes=probes)


_FINDINGS = {
    "bad_file_name": ("error", "file names must be relative paths inside the images folder"),
    "image_missing": ("error", "images listed in the annotations but not found"),
    "image_not_a_file": ("error", "listed names that are a folder, FIFO or device, not a regular file"),
    "image_outside_root": ("error", "listed files are links that lead outside the import roots you may use "
                                    "(or into dsgen's data folder)"),
    "image_hidden": ("warning", "listed images are hidden files (a name part starts with '.'); imported because "
                                "the annotations list them"),
}


def _problem(image_id: int, name: object, key: str | None, f: Found | None, where: str) -> tuple[str, str] | None:
    """(finding code, example) for one listed image, or None when its file is fine."""
    if key is None:
        return "bad_file_name", f"image {image_id}: file_name {name!r}"
    if f is None:
        return "image_missing", f"image {image_id}: {key} (not in {where})"
    if f.problem == AMBIGUOUS:
        return "bad_file_name", (f"image {image_id}: {key} matches two files whose names differ only in Unicode "
                                 "normalization (NFC/NFD)")
    if f.problem == SPECIAL:
        return "image_not_a_file", f"image {image_id}: {key}"
    if f.problem == OUTSIDE:
        return "image_outside_root", f"image {image_id}: {key}"
    if f.hidden:
        return "image_hidden", f"image {image_id}: {key}"
    return None


def _report_probes(images: pa.Table, keys: list, found: list, probes: list, report: ValidationReport) -> None:
    ids = images.column("image_id").to_pylist()
    widths = images.column("width").to_pylist()
    heights = images.column("height").to_pylist()
    corrupt, unsupported, mismatch, rotated = [], [], [], []
    for image_id, key, f, probe, w, h in zip(ids, keys, found, probes, widths, heights, strict=True):
        if probe is None:
            continue
        if probe.error:
            if f.suffix not in IMAGE_EXTENSIONS and probe.error == "unknown image format":
                unsupported.append(f"image {image_id}: {key} ({f.suffix or 'no extension'})")
            else:
                corrupt.append(f"image {image_id}: {key}: {probe.error}")
            continue
        orientation = probe.exif_orientation or 1
        if orientation != 1:
            rotated.append(f"image {image_id}: {key}: EXIF orientation {orientation}")
        dims = (probe.width, probe.height)
        ok = dims == (w, h) or (orientation in ROTATING_ORIENTATIONS and dims == (h, w))
        if not ok:
            mismatch.append(f"image {image_id}: {key}: JSON says {w}x{h}, file is {probe.width}x{probe.height}")
    report.error("image_corrupt", "image files that cannot be read (corrupt, truncated or not an image)", len(corrupt), corrupt)
    report.error("image_unsupported", "listed files are of a type dsgen cannot read (e.g. HEIC); convert them to "
                 "JPEG or PNG", len(unsupported), unsupported)
    report.warning("size_mismatch", "width/height in the JSON differ from the image file", len(mismatch), mismatch)
    report.warning(
        "exif_rotation", "images carry an EXIF rotation (viewers rotate them, boxes may not match)", len(rotated), rotated
    )


def store_media(
    storage: Storage,
    media: MediaResult,
    in_place: bool,
    move: bool,
    progress: Progress | None = None,
    workers: int = 8,
) -> list[str | None]:
    """Put bytes into storage (or reference them in place); returns one URI per image row."""
    total = len(media.paths)

    def one(item: tuple[Path | None, ImageProbe | None]) -> str | None:
        path, probe = item
        if path is None or probe is None or probe.sha256 is None:
            return None
        if in_place:
            return file_uri(path)
        return storage.put_file(path, probe.sha256, path.suffix, move=move)

    uris: list[str | None] = []
    with ThreadPoolExecutor(workers) as pool:
        for i, uri in enumerate(pool.map(one, zip(media.paths, media.probes, strict=True), chunksize=64)):
            uris.append(uri)
            if progress and (i % 500 == 0 or i + 1 == total):
                progress(i + 1, total)
    return uris


def with_media_columns(images: pa.Table, media: MediaResult, uris: list[str | None]) -> pa.Table:
    """The images table with uri, sha256, size and EXIF orientation filled from the probes."""

    def col(name: str, typ: pa.DataType, values: list) -> None:
        nonlocal images
        idx = images.schema.get_field_index(name)
        images = images.set_column(idx, name, pa.array(values, type=typ))

    probes = media.probes
    col("uri", pa.string(), uris)
    col("sha256", pa.string(), [p.sha256 if p else None for p in probes])
    col("size_bytes", pa.int64(), [p.size_bytes if p else None for p in probes])
    col("exif_orientation", pa.int8(), [p.exif_orientation if p else None for p in probes])
    return images
