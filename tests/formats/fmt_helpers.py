"""Builders for the format tests: real JPEGs (with EXIF orientation when asked) and sample splits."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from dsgen_core.formats.base import Format, ReadResult, Split
from dsgen_core.formats.coco_reader import read_coco
from dsgen_core.sample_data import SampleSpec, generate_cvat_coco
from dsgen_core.validation import ValidationReport


def jpeg(path: Path, w: int, h: int, orientation: int | None = None, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", (w, h), ((seed * 37) % 255, (seed * 91) % 255, 90))
    exif = Image.Exif()
    if orientation:
        exif[274] = orientation
    img.save(path, "JPEG", quality=85, exif=exif.tobytes() if orientation else b"")
    return path


def sample_split(root: Path, n: int = 10, seed: int = 3, name: str = "train", **spec) -> Split:
    """A CVAT-style COCO export with real JPEGs, read by the COCO reader, as one split."""
    generate_cvat_coco(root, SampleSpec(num_images=n, seed=seed, workers=1, **spec))
    report = ValidationReport()
    tables = read_coco(root / "annotations" / "instances_default.json", report)
    assert tables is not None and not report.has_errors, report.render_text()
    return Split(name, tables, root / "images")


def objects(split: Split, kinds: tuple[str, ...] = ("BBOX", "SEGMENTATION")) -> dict[str, list[tuple]]:
    """file_name → sorted (class name, x, y, w, h) of every object of these kinds."""
    t = split.tables
    names = dict(zip(t.categories.column("category_id").to_pylist(), t.categories.column("name").to_pylist(),
                     strict=True))
    files = dict(zip(t.images.column("image_id").to_pylist(), t.images.column("file_name").to_pylist(), strict=True))
    out: dict[str, list[tuple]] = {f: [] for f in files.values()}
    a = t.annotations
    for row in a.select(["image_id", "category_id", "annotation_type", "bbox_x", "bbox_y", "bbox_w",
                         "bbox_h"]).to_pylist():
        if row["annotation_type"] in kinds:
            out[files[row["image_id"]]].append((names[row["category_id"]], row["bbox_x"], row["bbox_y"],
                                                row["bbox_w"], row["bbox_h"]))
    return {k: sorted(v) for k, v in out.items()}


def sizes(split: Split) -> dict[str, tuple[int, int]]:
    t = split.tables.images
    return {f: (w, h) for f, w, h in zip(t.column("file_name").to_pylist(), t.column("width").to_pylist(),
                                         t.column("height").to_pylist(), strict=True)}


def assert_close_objects(got: dict, want: dict, size: dict, rel: float = 1e-6) -> None:
    """Same objects per image, each coordinate within `rel` of that image's width/height."""
    assert got.keys() == want.keys()
    for name in want:
        g, w = got[name], want[name]
        assert [o[0] for o in g] == [o[0] for o in w], name
        W, H = size[name]
        for a, b in zip(g, w, strict=True):
            for k, scale in zip(range(1, 5), (W, H, W, H), strict=True):
                assert abs(a[k] - b[k]) <= rel * scale, (name, a, b)


def read(fmt: Format, source: Path) -> tuple[ReadResult | None, ValidationReport]:
    """Read `source` with a format; the result and its validation report."""
    report = ValidationReport()
    return fmt.read(source, report), report
