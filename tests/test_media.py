"""Image probing and thumbnails."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dsgen_core.media import make_thumbnail, make_thumbnails, naive_thumbnail, probe_image, probe_images
from dsgen_core.sample_data import (
    write_empty_file,
    write_jpeg_with_exif_orientation,
    write_jpeg_with_trailing_bytes,
    write_png,
    write_random_bytes,
    write_sample_jpeg,
    write_truncated_jpeg,
)


def _decoded_size(p: Path) -> tuple[int, int]:
    with Image.open(p) as img:
        img.load()
        return img.size


def test_probe_good_jpeg(tmp_path):
    p = write_sample_jpeg(tmp_path / "a.jpg", 1280, 720, seed=1)
    r = probe_image(p, verify=True)
    assert r.error is None and r.ok
    assert r.format == "JPEG"
    assert (r.width, r.height) == (1280, 720) == _decoded_size(p)
    assert r.size_bytes == p.stat().st_size
    assert r.sha256 == hashlib.sha256(p.read_bytes()).hexdigest()
    assert r.exif_orientation is None


def test_probe_good_png(tmp_path):
    p = write_png(tmp_path / "a.png", 321, 123)
    r = probe_image(p, verify=True)
    assert r.error is None
    assert r.format == "PNG"
    assert (r.width, r.height) == (321, 123) == _decoded_size(p)


def test_probe_missing(tmp_path):
    r = probe_image(tmp_path / "nope.jpg")
    assert r.error is not None and r.error.startswith("missing")
    assert r.sha256 is None and r.size_bytes is None


def test_probe_truncated_jpeg(tmp_path):
    p = write_truncated_jpeg(tmp_path / "t.jpg", 640, 480, keep=0.6)
    cheap = probe_image(p, verify=False)
    assert cheap.error is None and (cheap.width, cheap.height) == (640, 480)  # the header is intact
    r = probe_image(p, verify=True)
    assert r.error is not None and "truncated" in r.error
    assert r.sha256 == hashlib.sha256(p.read_bytes()).hexdigest()


def test_probe_truncated_png(tmp_path):
    p = write_png(tmp_path / "t.png", 200, 200)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    assert probe_image(p, verify=True).error is not None


def test_probe_trailing_bytes_after_eoi_is_fine(tmp_path):
    p = write_jpeg_with_trailing_bytes(tmp_path / "pad.jpg")
    assert probe_image(p, verify=True).error is None


@pytest.mark.parametrize("writer", [write_random_bytes, write_empty_file])
def test_probe_not_an_image(tmp_path, writer):
    p = writer(tmp_path / "x.jpg")
    r = probe_image(p, verify=True)
    assert r.error is not None
    assert r.width is None and r.format is None
    assert r.size_bytes == p.stat().st_size


def test_probe_exif_orientation(tmp_path):
    p = write_jpeg_with_exif_orientation(tmp_path / "o.jpg", 640, 480, 6)
    r = probe_image(p, verify=True)
    assert r.error is None
    assert r.exif_orientation == 6
    assert (r.width, r.height) == (640, 480)  # stored size, as the header says


def test_probe_images_order_and_progress(tmp_path):
    good = [write_sample_jpeg(tmp_path / f"g{i}.jpg", 160, 120, seed=i) for i in range(5)]
    paths = [good[0], tmp_path / "missing.jpg", *good[1:], write_random_bytes(tmp_path / "r.bin")] * 50
    calls: list[tuple[int, int]] = []
    res = probe_images(paths, workers=4, verify=True, progress=lambda d, t: calls.append((d, t)))
    assert len(res) == len(paths)
    for p, r in zip(paths, res, strict=True):
        assert (r.error is None) == (p in good)
        if r.error is None:
            assert r.sha256 == hashlib.sha256(p.read_bytes()).hexdigest()
    assert calls[-1] == (len(paths), len(paths))
    assert calls[0] == (200, len(paths))
    assert probe_images([], progress=lambda d, t: calls.append((d, t))) == []


def test_thumbnail_size_and_bytes_source(tmp_path):
    src = write_sample_jpeg(tmp_path / "big.jpg", 1920, 1080, seed=3)
    assert make_thumbnail(src, tmp_path / "t" / "a.jpg") == (512, 288)
    with Image.open(tmp_path / "t" / "a.jpg") as t:
        assert t.format == "JPEG" and t.size == (512, 288) and t.mode == "RGB"
    assert make_thumbnail(src.read_bytes(), tmp_path / "b.jpg", max_side=256) == (256, 144)
    assert not list((tmp_path / "t").glob("*.tmp"))  # atomic write leaves nothing behind
    small = write_sample_jpeg(tmp_path / "small.jpg", 300, 200)
    assert make_thumbnail(small, tmp_path / "s.jpg") == (300, 200)  # never upscaled


def test_thumbnail_content_matches_source(tmp_path):
    src = write_sample_jpeg(tmp_path / "big.jpg", 1280, 720, seed=9)
    make_thumbnail(src, tmp_path / "t.jpg")
    with Image.open(src) as a, Image.open(tmp_path / "t.jpg") as b:
        ref = np.asarray(a.convert("RGB").resize((512, 288), Image.Resampling.BOX), dtype=np.float64)
        got = np.asarray(b, dtype=np.float64)
    assert np.abs(ref - got).mean() < 6


@pytest.mark.parametrize("orientation,corner", [(1, "tl"), (3, "br"), (6, "tr"), (8, "bl")])
def test_thumbnail_applies_exif_orientation(tmp_path, orientation, corner):
    # stored: 1200 x 800, top-left quarter red, rest blue
    src = write_jpeg_with_exif_orientation(tmp_path / "o.jpg", 1200, 800, orientation)
    size = make_thumbnail(src, tmp_path / "t.jpg")
    expected = (512, 341) if orientation in (1, 3) else (341, 512)
    assert size == expected
    with Image.open(tmp_path / "t.jpg") as t:
        assert t.size == expected
        assert 274 not in t.getexif() or t.getexif()[274] == 1
        a = np.asarray(t.convert("RGB"), dtype=np.int32)
    h, w = a.shape[:2]
    probes = {"tl": (h // 8, w // 8), "tr": (h // 8, w - w // 8), "bl": (h - h // 8, w // 8)}
    probes["br"] = (h - h // 8, w - w // 8)
    for name, (y, x) in probes.items():
        r, _, b = a[y, x]
        if name == corner:
            assert r > 200 and b < 60, (name, a[y, x])
        else:
            assert b > 200 and r < 60, (name, a[y, x])


def test_thumbnail_png_with_alpha(tmp_path):
    src = write_png(tmp_path / "a.png", 700, 350, mode="RGBA")
    assert make_thumbnail(src, tmp_path / "t.jpg") == (512, 256)
    with Image.open(tmp_path / "t.jpg") as t:
        assert t.mode == "RGB"


def test_make_thumbnails_skips_existing(tmp_path):
    srcs = [write_sample_jpeg(tmp_path / "src" / f"{i}.jpg", 640, 480, seed=i) for i in range(6)]
    items = [(s, tmp_path / "thumbs" / f"{i}.jpg") for i, s in enumerate(srcs)]
    items[2][1].parent.mkdir(parents=True)
    items[2][1].write_bytes(b"already there")
    calls: list[tuple[int, int]] = []
    made = make_thumbnails(items, workers=2, progress=lambda d, t: calls.append((d, t)))
    assert made == 5
    assert items[2][1].read_bytes() == b"already there"
    for i, (_, dst) in enumerate(items):
        if i != 2:
            assert _decoded_size(dst) == (512, 384)
    assert calls[-1] == (6, 6)
    assert make_thumbnails(items, workers=2) == 0  # everything exists now


def test_make_thumbnails_skips_corrupt_sources(tmp_path):
    good = write_sample_jpeg(tmp_path / "g.jpg", 640, 480)
    bad = write_random_bytes(tmp_path / "b.jpg")
    made = make_thumbnails([(good, tmp_path / "t" / "g.jpg"), (bad, tmp_path / "t" / "b.jpg")], workers=1)
    assert made == 1
    assert not (tmp_path / "t" / "b.jpg").exists()


def test_naive_thumbnail(tmp_path):
    src = write_sample_jpeg(tmp_path / "big.jpg", 1920, 1080)
    naive_thumbnail(src, tmp_path / "n.jpg")
    assert _decoded_size(tmp_path / "n.jpg") == (512, 288)
