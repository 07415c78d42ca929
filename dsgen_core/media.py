"""Image probing (hash, size, header dimensions, EXIF orientation, corruption) and thumbnails.

``probe_image`` reads each file once: the bytes are hashed and handed to Pillow's lazy ``open``,
which parses the header only, never the pixel data. ``make_thumbnail`` decodes JPEGs at a reduced
DCT scale (``Image.draft``), which is what makes it several times faster than the naive
``open → thumbnail → save`` loop kept here as ``naive_thumbnail`` for the benchmark.
"""

from __future__ import annotations

import hashlib
import io
import math
import multiprocessing as mp
import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

EXIF_ORIENTATION = 274
PROGRESS_EVERY = 200
_PROBE_SLICE = 4096
_JPEG_SOS = b"\xff\xda"
_JPEG_EOI = b"\xff\xd9"


@dataclass
class ImageProbe:
    sha256: str | None
    size_bytes: int | None
    width: int | None
    height: int | None
    format: str | None
    exif_orientation: int | None
    error: str | None  # set for missing / unreadable / corrupt files

    @property
    def ok(self) -> bool:
        return self.error is None


def _jpeg_truncated(data: bytes) -> bool:
    """True when the last scan of a JPEG is not followed by the EOI marker (FF D9).

    Inside entropy-coded data every FF byte is stuffed (FF 00) or a restart marker, so an FF D9 after
    the last SOS (FF DA) can only be the real end of image. Bytes after EOI (padding some cameras
    write) are fine; an EOI that only belongs to an embedded EXIF thumbnail comes before the main SOS.
    """
    sos = data.rfind(_JPEG_SOS)
    return sos < 0 or data.rfind(_JPEG_EOI) < sos


def _orientation(img: Image.Image) -> int | None:
    # PNG's getexif() decodes the whole image when the eXIf chunk wasn't seen in the header: skip that
    if img.format == "PNG" and "exif" not in img.info:
        return None
    try:
        value = img.getexif().get(EXIF_ORIENTATION)
    except Exception:  # a broken EXIF block does not make the image unusable
        return None
    if isinstance(value, int) and 1 <= value <= 8:
        return value
    return None


def probe_bytes(data: bytes, verify: bool = False) -> ImageProbe:
    """``probe_image`` for bytes already in memory."""
    probe = ImageProbe(
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        width=None,
        height=None,
        format=None,
        exif_orientation=None,
        error=None,
    )
    if not data:
        probe.error = "empty file"
        return probe
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                probe.width, probe.height = img.size
                probe.format = img.format
                probe.exif_orientation = _orientation(img)
                if verify:
                    if img.format in ("JPEG", "MPO"):
                        if _jpeg_truncated(data):
                            probe.error = "truncated JPEG (no end-of-image marker after the last scan)"
                    else:
                        img.verify()  # PNG: chunk CRCs up to IEND, without decompressing
    except UnidentifiedImageError:
        probe.error = "unknown image format"
    except Image.DecompressionBombError as e:
        probe.error = f"image too large: {e}"
    except Exception as e:  # SyntaxError, OSError, struct.error, ... from a damaged header
        probe.error = f"corrupt image: {type(e).__name__}: {e}"
    return probe


def probe_image(path: Path, verify: bool = False) -> ImageProbe:
    """Hash, size, header dimensions/format and EXIF orientation of one file, reading it once.

    Never raises for a bad file: ``error`` says what is wrong (missing, unreadable, unknown format,
    corrupt header; with ``verify`` also truncated JPEG/PNG data).
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return ImageProbe(None, None, None, None, None, None, f"missing: {path}")
    except OSError as e:
        return ImageProbe(None, None, None, None, None, None, f"unreadable: {type(e).__name__}: {e}")
    return probe_bytes(data, verify)


def probe_images(
    paths: Sequence[Path],
    workers: int = 8,
    verify: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> list[ImageProbe]:
    """``probe_image`` over many files with a thread pool (hashing and I/O release the GIL).

    Results are in input order; ``progress(done, total)`` is called every ~200 files and at the end.
    """
    total = len(paths)
    out: list[ImageProbe] = []
    if total == 0:
        if progress is not None:
            progress(0, 0)
        return out
    workers = max(1, int(workers))
    if workers == 1:
        for i, p in enumerate(paths, 1):
            out.append(probe_image(p, verify))
            if progress is not None and (i % PROGRESS_EVERY == 0 or i == total):
                progress(i, total)
        return out
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # map() keeps input order; slices bound the number of pending futures for huge inputs
        for lo in range(0, total, _PROBE_SLICE):
            batch = paths[lo : lo + _PROBE_SLICE]
            for i, probe in enumerate(pool.map(lambda p: probe_image(p, verify), batch), lo + 1):
                out.append(probe)
                if progress is not None and (i % PROGRESS_EVERY == 0 or i == total):
                    progress(i, total)
    return out


def _target_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    scale = max_side / max(width, height)
    if scale >= 1.0:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def _atomic_save_jpeg(img: Image.Image, dst: Path, quality: int) -> None:
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        img.save(tmp, "JPEG", quality=quality)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def make_thumbnail(src: Path | bytes, dst: Path, max_side: int = 512, quality: int = 80) -> tuple[int, int]:
    """Write a JPEG thumbnail (longest side ``max_side``, EXIF orientation applied) to ``dst``.

    JPEGs are decoded at a reduced DCT scale (1/2, 1/4 or 1/8) that still covers the target size,
    then resized with a reducing filter. The write is atomic (temp file + ``os.replace``).
    Returns the thumbnail size (width, height) as displayed.
    """
    fp = io.BytesIO(src) if isinstance(src, bytes | bytearray | memoryview) else src
    with Image.open(fp) as img:
        target = _target_size(img.width, img.height, max_side)
        if img.format in ("JPEG", "MPO"):
            # decode straight to RGB at the smallest scale that is still >= the target size
            img.draft("RGB", target)
        img.load()
        orientation = _orientation(img)
        im: Image.Image = img
        if im.mode not in ("RGB", "L"):
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                bg = Image.new("RGB", rgba.size, (255, 255, 255))
                bg.paste(rgba, mask=rgba.getchannel("A"))
                im = bg
            else:
                im = im.convert("RGB")
        if im.size != target:
            im = im.resize(target, Image.Resampling.BILINEAR, reducing_gap=2.0)
        if orientation and orientation != 1:
            im.getexif()[EXIF_ORIENTATION] = orientation  # exif_transpose reads it from the image
            im = ImageOps.exif_transpose(im)
        if im.mode != "RGB":
            im = im.convert("RGB")
        _atomic_save_jpeg(im, dst, quality)
        return im.size


def _thumb_job(args: tuple[str, str, int, int]) -> bool:
    src, dst, max_side, quality = args
    try:
        make_thumbnail(Path(src), Path(dst), max_side, quality)
        return True
    except Exception:  # a corrupt source is reported by probing; skip it here
        return False


def make_thumbnails(
    items: Sequence[tuple[Path, Path]],
    workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
    max_side: int = 512,
    quality: int = 80,
) -> int:
    """Make thumbnails for (src, dst) pairs in a process pool; skips pairs whose dst exists.

    ``workers=0`` → ``os.cpu_count()``. Sources that cannot be decoded are skipped. Returns the
    number of thumbnails made; ``progress(done, total)`` counts all items, skipped ones included.
    The pool uses "forkserver", so a script calling this with workers != 1 needs the usual
    ``if __name__ == "__main__":`` guard.
    """
    total = len(items)
    todo = [(str(s), str(d), max_side, quality) for s, d in items if not os.path.exists(d)]
    done = total - len(todo)
    made = 0
    if progress is not None:
        progress(done, total)
    if not todo:
        return 0
    workers = workers or os.cpu_count() or 1
    workers = min(workers, len(todo))
    step = PROGRESS_EVERY
    if workers == 1:
        results = map(_thumb_job, todo)
        for i, ok in enumerate(results, 1):
            made += ok
            if progress is not None and (i % step == 0 or i == len(todo)):
                progress(done + i, total)
        return made
    chunksize = max(1, min(32, math.ceil(len(todo) / (workers * 8))))
    # forkserver: forking a parent with threads (a web app, a thread pool) can deadlock the children
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("forkserver")) as pool:
        for i, ok in enumerate(pool.map(_thumb_job, todo, chunksize=chunksize), 1):
            made += ok
            if progress is not None and (i % step == 0 or i == len(todo)):
                progress(done + i, total)
    return made


def naive_thumbnail(src: Path, dst: Path, max_side: int = 512) -> None:
    """The benchmark baseline: open, ``thumbnail``, save. No tricks."""
    with Image.open(src) as img:
        img.thumbnail((max_side, max_side))
        img.save(dst)
