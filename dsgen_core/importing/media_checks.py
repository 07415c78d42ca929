"""Matching listed images to files on disk, probing them, and storing their bytes."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from dsgen_core.importing.sources import list_image_files, normalize_file_name
from dsgen_core.media import ImageProbe, probe_images
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
    images: pa.Table, root: Path, report: ValidationReport, progress: Progress | None = None, workers: int = 8
) -> MediaResult:
    names = images.column("file_name").to_pylist()
    ids = images.column("image_id").to_pylist()
    on_disk = list_image_files(root)
    paths: list[Path | None] = []
    bad_names, missing = [], []
    listed: set[str] = set()
    for image_id, name in zip(ids, names, strict=True):
        rel = normalize_file_name(name)
        if rel is None:
            bad_names.append(f"image {image_id}: file_name {name!r}")
            paths.append(None)
            continue
        listed.add(rel)
        path = on_disk.get(rel)
        if path is None:
            missing.append(f"image {image_id}: {rel} (looked in {root})")
        paths.append(path)
    report.error("bad_file_name", "file names must be relative paths inside the images folder", len(bad_names), bad_names)
    report.error("image_missing", "images listed in the annotations but not found on disk", len(missing), missing)
    unlisted = sorted(set(on_disk) - listed)
    report.warning("image_unlisted", "image files on disk that the annotations do not list (not imported)", len(unlisted), unlisted)

    present = [(i, p) for i, p in enumerate(paths) if p is not None]
    probes_present = probe_images([p for _, p in present], workers=workers, verify=True, progress=progress)
    probes: list[ImageProbe | None] = [None] * len(paths)
    for (i, _), probe in zip(present, probes_present, strict=True):
        probes[i] = probe
    _report_probes(images, paths, probes, report)
    report.stats["images_on_disk"] = len(on_disk)
    return MediaResult(paths=paths, probes=probes)


def _report_probes(images: pa.Table, paths: list, probes: list, report: ValidationReport) -> None:
    ids = images.column("image_id").to_pylist()
    widths = images.column("width").to_pylist()
    heights = images.column("height").to_pylist()
    corrupt, mismatch, rotated = [], [], []
    for image_id, path, probe, w, h in zip(ids, paths, probes, widths, heights, strict=True):
        if probe is None:
            continue
        if probe.error:
            corrupt.append(f"image {image_id}: {path.name}: {probe.error}")
            continue
        orientation = probe.exif_orientation or 1
        if orientation != 1:
            rotated.append(f"image {image_id}: {path.name}: EXIF orientation {orientation}")
        dims = (probe.width, probe.height)
        ok = dims == (w, h) or (orientation in ROTATING_ORIENTATIONS and dims == (h, w))
        if not ok:
            mismatch.append(f"image {image_id}: {path.name}: JSON says {w}x{h}, file is {probe.width}x{probe.height}")
    report.error("image_corrupt", "image files that cannot be read (corrupt, truncated or not an image)", len(corrupt), corrupt)
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
