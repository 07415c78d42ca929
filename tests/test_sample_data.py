"""The sample CVAT COCO generator: structure, realism, consistency with pycocotools, determinism."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from dsgen_core.sample_data import (
    ANNOTATIONS_NAME,
    SampleSpec,
    generate_cvat_coco,
    generate_cvat_coco_zip,
)

EPS = 1e-6


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> tuple[Path, SampleSpec, list]:
    spec = SampleSpec(num_images=40, seed=11, workers=2, rle_fraction=0.05)
    calls: list = []
    out = generate_cvat_coco(
        tmp_path_factory.mktemp("export") / "ds", spec, lambda d, t: calls.append((d, t))
    )
    return out, spec, calls


@pytest.fixture(scope="module")
def data(export) -> dict:
    return json.loads((export[0] / ANNOTATIONS_NAME).read_bytes())


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> dict:
    """Annotations only, enough images for distribution checks."""
    out = generate_cvat_coco(
        tmp_path_factory.mktemp("big") / "ds", SampleSpec(num_images=3000, with_images=False, seed=5)
    )
    return json.loads((out / ANNOTATIONS_NAME).read_bytes())


def test_top_level_layout(data):
    assert list(data) == ["licenses", "info", "categories", "images", "annotations"]
    assert data["licenses"] == [{"name": "", "id": 0, "url": ""}]
    assert data["info"] == {
        "contributor": "",
        "date_created": "",
        "description": "",
        "url": "",
        "version": "",
        "year": "",
    }
    cats = data["categories"]
    assert 12 <= len(cats) <= 20
    assert [c["id"] for c in cats] == list(range(1, len(cats) + 1))
    assert all(set(c) == {"id", "name", "supercategory"} and c["supercategory"] for c in cats)
    assert len({c["name"] for c in cats}) == len(cats)


def test_counts_and_ids(export, data):
    _, spec, calls = export
    images, anns = data["images"], data["annotations"]
    assert len(images) == spec.num_images
    assert [im["id"] for im in images] == list(range(1, spec.num_images + 1))
    assert [a["id"] for a in anns] == list(range(1, len(anns) + 1))
    assert {a["image_id"] for a in anns} <= {im["id"] for im in images}
    assert calls[-1] == (spec.num_images, spec.num_images)
    for im in images:
        assert list(im) == [
            "id",
            "width",
            "height",
            "file_name",
            "license",
            "flickr_url",
            "coco_url",
            "date_captured",
        ]
        assert (im["width"], im["height"]) in spec.resolutions
        assert im["license"] == 0 and im["flickr_url"] == "" and im["coco_url"] == ""
        assert im["date_captured"] == 0
        assert im["file_name"].count("/") == 2  # nested: <scene>/<seq>/<frame>.jpg


def test_distribution_is_long_tailed(big):
    anns, images = big["annotations"], big["images"]
    per_image = np.bincount([a["image_id"] for a in anns], minlength=len(images) + 1)[1:]
    assert per_image.max() <= 30
    assert abs(per_image.mean() - 7.3) < 0.4
    assert (per_image == 0).any()
    freq = np.bincount([a["category_id"] for a in anns])[1:]
    assert freq[0] == freq.max()  # person
    assert freq[0] > 5 * freq[-1]  # long tail
    assert (freq > 0).all()
    assert len({(im["width"], im["height"]) for im in images}) >= 3
    crowd = sum(a["iscrowd"] for a in anns) / len(anns)
    poly = sum(1 for a in anns if isinstance(a["segmentation"], list) and a["segmentation"]) / len(anns)
    assert 0.003 < crowd < 0.02
    assert 0.3 < poly < 0.4


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools vs numpy 2
def test_geometry_consistent_with_pycocotools(export):
    root = export[0]
    coco = COCO(str(root / ANNOTATIONS_NAME))
    kinds = {"box": 0, "poly": 0, "rle": 0}
    for ann in coco.dataset["annotations"]:
        img = coco.imgs[ann["image_id"]]
        w, h = img["width"], img["height"]
        x, y, bw, bh = ann["bbox"]
        assert all(round(v, 2) == v for v in ann["bbox"])  # 2 decimals like CVAT
        assert x >= 0 and y >= 0 and bw > 0 and bh > 0
        assert x + bw <= w + EPS and y + bh <= h + EPS
        seg = ann["segmentation"]
        if ann["iscrowd"]:
            kinds["rle"] += 1
            assert isinstance(seg, dict) and list(seg) == ["counts", "size"]
            assert isinstance(seg["counts"], list) and seg["size"] == [h, w]
            assert sum(seg["counts"]) == w * h
            rle = mask_utils.frPyObjects(seg, h, w)
            m = mask_utils.decode(rle)
            assert m.shape == (h, w)
            assert ann["area"] == pytest.approx(float(mask_utils.area(rle)))
            assert ann["area"] == m.sum()
            assert ann["bbox"] == pytest.approx(list(mask_utils.toBbox(rle)))
        elif seg:
            kinds["poly"] += 1
            assert len(seg) == 1 and len(seg[0]) % 2 == 0 and len(seg[0]) >= 6
            pts = np.asarray(seg[0]).reshape(-1, 2)
            assert pts[:, 0].min() == pytest.approx(x) and pts[:, 1].min() == pytest.approx(y)
            assert pts[:, 0].max() == pytest.approx(x + bw) and pts[:, 1].max() == pytest.approx(y + bh)
            assert (pts >= 0).all() and (pts[:, 0] <= w).all() and (pts[:, 1] <= h).all()
            px, py = pts[:, 0], pts[:, 1]
            shoelace = 0.5 * abs(np.dot(px, np.roll(py, -1)) - np.dot(py, np.roll(px, -1)))
            assert ann["area"] == pytest.approx(shoelace, abs=0.01)
            assert 0 < ann["area"] <= bw * bh
        else:
            kinds["box"] += 1
            assert seg == []
            assert ann["area"] == pytest.approx(bw * bh, abs=0.01)
        if seg:  # pycocotools can rasterise every segmentation (it can't do CVAT's [] for boxes)
            assert coco.annToMask(ann).shape == (h, w)
    assert all(kinds.values()), kinds


def test_attributes(data):
    names = {c["id"]: c["name"] for c in data["categories"]}
    for ann in data["annotations"]:
        attrs = ann["attributes"]
        assert isinstance(attrs["occluded"], bool)
        assert attrs["rotation"] == 0.0
        name = names[ann["category_id"]]
        if name == "car":
            assert attrs["color"] in {"red", "blue", "white", "black"}
        elif name == "person":
            assert attrs["pose"] in {"standing", "walking", "sitting", "lying"}
        else:
            assert set(attrs) == {"occluded", "rotation"}
        assert list(ann) == [
            "id",
            "image_id",
            "category_id",
            "segmentation",
            "area",
            "bbox",
            "iscrowd",
            "attributes",
        ]


def test_images_are_real_and_distinct(export, data):
    root = export[0]
    digests = set()
    for im in data["images"]:
        p = root / "images" / im["file_name"]
        with Image.open(p) as img:
            assert img.format == "JPEG"
            assert img.size == (im["width"], im["height"])
            img.load()
            assert np.asarray(img).std() > 5  # not a flat colour
        digests.add(hashlib.sha256(p.read_bytes()).hexdigest())
    assert len(digests) == len(data["images"])
    files = sorted(p.relative_to(root / "images").as_posix() for p in (root / "images").rglob("*.jpg"))
    assert files == sorted(im["file_name"] for im in data["images"])


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_deterministic_across_runs_and_workers(tmp_path):
    spec1 = SampleSpec(num_images=12, seed=4, workers=1)
    spec2 = SampleSpec(num_images=12, seed=4, workers=2)
    a = _tree_digest(generate_cvat_coco(tmp_path / "a", spec1))
    b = _tree_digest(generate_cvat_coco(tmp_path / "b", spec2))
    assert a == b
    c = _tree_digest(generate_cvat_coco(tmp_path / "c", SampleSpec(num_images=12, seed=5, workers=1)))
    assert c[ANNOTATIONS_NAME] != a[ANNOTATIONS_NAME]


def test_annotations_only_and_flat(tmp_path):
    spec = SampleSpec(num_images=2500, with_images=False, nested=False, seed=2)
    out = generate_cvat_coco(tmp_path / "x", spec)
    assert not (out / "images").exists()
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["annotations", ANNOTATIONS_NAME]
    d = json.loads((out / ANNOTATIONS_NAME).read_bytes())
    assert len(d["images"]) == 2500
    assert all("/" not in im["file_name"] for im in d["images"])
    again = generate_cvat_coco(tmp_path / "y", spec)
    assert (again / ANNOTATIONS_NAME).read_bytes() == (out / ANNOTATIONS_NAME).read_bytes()


def test_zip_layout_like_cvat(tmp_path):
    spec = SampleSpec(num_images=6, seed=8, workers=1)
    z = generate_cvat_coco_zip(tmp_path / "out" / "task.zip", spec)
    with zipfile.ZipFile(z) as zf:
        names = zf.namelist()
        assert names[0] == "annotations/instances_default.json"
        assert all(n.startswith("images/") and n.endswith(".jpg") for n in names[1:])
        assert not any(n.endswith("/") for n in names)  # file entries only
        d = json.loads(zf.read(ANNOTATIONS_NAME))
        assert sorted(names[1:]) == sorted("images/" + im["file_name"] for im in d["images"])
        assert zf.testzip() is None
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["task.zip"]  # no temp leftovers
    z2 = generate_cvat_coco_zip(tmp_path / "task2.zip", spec)
    assert z.read_bytes() == z2.read_bytes()


def test_empty_and_boxless(tmp_path):
    out = generate_cvat_coco(tmp_path / "e", SampleSpec(num_images=0))
    d = json.loads((out / ANNOTATIONS_NAME).read_bytes())
    assert d["images"] == [] and d["annotations"] == []
    out = generate_cvat_coco(tmp_path / "n", SampleSpec(num_images=3, mean_boxes=0, workers=1))
    d = json.loads((out / ANNOTATIONS_NAME).read_bytes())
    assert len(d["images"]) == 3 and d["annotations"] == []
