"""EXIF orientation maps of the pull-back and export against Pillow's exif_transpose, pixel for pixel."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps
from pycocotools import mask as mask_utils

from dsgen_core.cvat_sync.orientation import turn, turned_size, upright_copy
from dsgen_core.cvat_sync.shapes import Ann, same_geometry

W, H = 7, 5


def _shown(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """What a viewer shows of stored pixels with this orientation (Pillow applying the EXIF tag)."""
    im = Image.fromarray(pixels)
    exif = im.getexif()
    exif[0x0112] = orientation
    im.info["exif"] = exif.tobytes()
    return np.asarray(ImageOps.exif_transpose(im))


@pytest.mark.parametrize("orientation", range(2, 9))
def test_turned_shapes_cover_the_pixels_exif_transpose_moves(orientation: int) -> None:
    stored = np.zeros((H, W), np.uint8)
    stored[1, 2] = stored[1, 3] = stored[3, 5] = 255  # two pixels of a box, one of a polygon's corner
    shown = _shown(stored, orientation)
    assert shown.shape[::-1] == turned_size(orientation, W, H)
    box = Ann("car", "box", (2.0, 1.0, 2.0, 1.0))  # covers stored pixels (2, 1) and (3, 1)
    t = turn(box, orientation, W, H)
    x, y, w, h = (int(round(v)) for v in t.bbox)
    lit = np.argwhere(shown[y : y + h, x : x + w] == 255)
    assert len(lit) == 2 and w * h == 2  # exactly the two box pixels, where exif_transpose put them
    poly = Ann("car", "polygon", (5.0, 3.0, 1.0, 1.0), [[5.0, 3.0, 6.0, 3.0, 6.0, 4.0, 5.0, 4.0]])
    tp = turn(poly, orientation, W, H)
    xs, ys = tp.polygons[0][0::2], tp.polygons[0][1::2]
    assert shown[int(min(ys)), int(min(xs))] == 255 and max(xs) - min(xs) == max(ys) - min(ys) == 1
    mask = np.asfortranarray((stored > 0).astype(np.uint8))
    rle = mask_utils.encode(mask)
    m = turn(Ann("car", "mask", (2.0, 1.0, 4.0, 3.0), rle={"counts": rle["counts"].decode(), "size": [H, W]}),
             orientation, W, H)
    assert (mask_utils.decode({"counts": m.rle["counts"].encode(), "size": m.rle["size"]}) * 255 == shown).all()
    tw, th = turned_size(orientation, W, H)
    for a, turned in ((box, t), (poly, tp)):  # and back, exactly, from the frame as CVAT shows it
        assert same_geometry(turn(turned, orientation, tw, th, back=True), a)
        assert turn(turned, orientation, tw, th, back=True).bbox == pytest.approx(a.bbox, abs=1e-12)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_upright_copy_has_the_shown_pixels_and_no_orientation(tmp_path, orientation: int) -> None:
    stored = np.zeros((48, 80, 3), np.uint8)
    stored[:16, :16] = (250, 250, 250)  # a bright top-left block
    src = tmp_path / "a.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "camera maker"  # other EXIF stays
    Image.fromarray(stored).save(src, "JPEG", quality=95, exif=exif)
    out = upright_copy(src, tmp_path / "up" / "a.jpg")
    with Image.open(out) as im:
        assert im.format == "JPEG" and im.size == turned_size(orientation, 80, 48)
        assert im.getexif().get(0x0112) is None and im.getexif().get(0x010F) == "camera maker"
        got = np.asarray(im.convert("L")).astype(int)
    with Image.open(src) as im:
        want = np.asarray(ImageOps.exif_transpose(im).convert("L")).astype(int)
    assert np.abs(got - want).mean() < 2.0  # the same picture, re-encoded with the original's tables
