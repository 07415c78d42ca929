"""VisDrone, ImageFolder, ATTR_JSON, unlabeled images, the COCO adapter, the registry and how exports are written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import orjson
import pytest
from fmt_helpers import jpeg, objects, read, sample_split

from dsgen_core.formats.attr_json import FORMAT as ATTR
from dsgen_core.formats.base import ClassOrder, ConversionRefused, ImageMode, Split, WriteOptions
from dsgen_core.formats.coco import FORMAT as COCO
from dsgen_core.formats.imagefolder import FORMAT as FOLDER
from dsgen_core.formats.registry import BUILTIN_FORMATS, FormatRegistry, UnknownFormat
from dsgen_core.formats.unlabeled import FORMAT as UNLABELED
from dsgen_core.formats.visdrone import CATEGORIES
from dsgen_core.formats.visdrone import FORMAT as VISDRONE
from dsgen_core.formats.yolo import FORMAT as YOLO
from dsgen_core.validation import ValidationReport


def _visdrone(root: Path) -> Path:
    base = root / "VisDrone2019-DET-val"
    jpeg(base / "images/0000001_00000_d_0000001.jpg", 200, 150)
    jpeg(base / "images/0000002_00000_d_0000002.jpg", 200, 150)
    (base / "annotations").mkdir(parents=True)
    (base / "annotations/0000001_00000_d_0000001.txt").write_text(
        "10,20,30,40,1,4,0,1\n0,0,50,60,0,0,-1,-1\n5,5,10,10,1,11,1,2,\n")
    (base / "annotations/0000002_00000_d_0000002.txt").write_text("1,2,3\n7,7,7,7,1,12,0,0\n")
    (base / "annotations/0000003_00000_d_0000003.txt").write_text("1,1,1,1,1,1,0,0\n")
    return root


def test_visdrone_keeps_its_category_numbers_and_ignored_regions(tmp_path: Path) -> None:
    res, report = read(VISDRONE, _visdrone(tmp_path / "vd"))
    s = res.split("val")
    assert s.tables.categories.column("name").to_pylist() == list(CATEGORIES)
    assert s.tables.categories.column("category_id").to_pylist() == list(range(12))
    rows = s.tables.annotations.to_pylist()
    assert [r["category_id"] for r in rows] == [4, 0, 11]  # car, ignored region, others: as in the file
    assert orjson.loads(rows[1]["attributes"]) == {"score": 0, "truncation": -1, "occlusion": -1}
    assert (rows[0]["bbox_x"], rows[0]["bbox_y"], rows[0]["bbox_w"], rows[0]["bbox_h"]) == (10, 20, 30, 40)
    assert report.get("malformed_line").examples == ["annotations/0000002_00000_d_0000002.txt:1: '1,2,3'"]
    assert report.get("class_out_of_range").count == 1
    assert report.get("label_without_image").examples == ["annotations/0000003_00000_d_0000003.txt"]
    out = tmp_path / "back"
    rep = VISDRONE.write([s], out, WriteOptions())
    assert not rep.lossy, rep.render_text()
    text = (out / "VisDrone2019-DET-val/annotations/0000001_00000_d_0000001.txt").read_text()
    assert text == "10,20,30,40,1,4,0,1\n0,0,50,60,0,0,-1,-1\n5,5,10,10,1,11,1,2\n"


def test_visdrone_export_names_what_it_cannot_carry(tmp_path: Path) -> None:
    src = sample_split(tmp_path / "src", n=4)
    plan = VISDRONE.plan([src], WriteOptions())
    assert plan.loss("classes").count > 0  # person→? VisDrone has pedestrian/people, not 'person'
    assert plan.loss("rounding").count > 0  # CVAT's 2-decimal boxes become whole pixels
    assert {"car", "bicycle", "truck", "bus"} >= {n for _, _, n in plan.class_map} - {"van"}


def _folder(root: Path) -> Path:
    for split, cls, n in (("train", "cat", 2), ("train", "Dog", 1), ("val", "cat", 1), ("val", "bird", 1)):
        for i in range(n):
            jpeg(root / split / cls / ("deep" if i else "") / f"{cls}{i}.png".replace(".png", ".jpg"), 30, 20)
    return root


def test_imagefolder_splits_and_torchvision_class_order(tmp_path: Path) -> None:
    report = ValidationReport()
    res = FOLDER.read(_folder(tmp_path / "cls"), report)
    assert [s.name for s in res.splits] == ["train", "val"]
    train = res.split("train")
    # the union of both splits' folders, sorted by code point: uppercase first, as torchvision numbers them
    assert train.tables.categories.column("name").to_pylist() == ["Dog", "bird", "cat"]
    assert train.tables.categories.column("category_id").to_pylist() == [0, 1, 2]
    labels = {r["file_name"]: r for r in train.tables.images.to_pylist()}
    assert set(labels) == {"Dog/Dog0.jpg", "cat/cat0.jpg", "cat/deep/cat1.jpg"}
    assert report.get("split_classes_differ").count == 2
    out = tmp_path / "out"
    FOLDER.write(res.splits, out, WriteOptions(images=ImageMode.HARDLINK))
    assert (out / "train/cat/deep/cat1.jpg").stat().st_ino == (tmp_path / "cls/train/cat/deep/cat1.jpg").stat().st_ino
    assert sorted(p.name for p in (out / "val").iterdir()) == ["Dog", "bird", "cat"]  # every class in every split


def test_supervision_reads_our_imagefolder_the_same_way(tmp_path: Path) -> None:
    sv = pytest.importorskip("supervision")
    res = FOLDER.read(_folder(tmp_path / "cls"), ValidationReport())
    FOLDER.write([res.split("train")], tmp_path / "out", WriteOptions(images=ImageMode.COPY))
    ds = sv.ClassificationDataset.from_folder_structure(str(tmp_path / "out/train"))
    ours = {r["file_name"].rsplit("/", 1)[-1]: r for r in res.split("train").tables.images.to_pylist()}
    names = res.split("train").tables.categories.column("name").to_pylist()
    for path, _img, cls in ds:
        assert ds.classes[int(cls.class_id[0])] == Path(path).parent.name
    assert set(ds.classes) <= set(names) and len(ds) == len(ours) - 1  # supervision skips nested folders


def test_imagefolder_export_refuses_detection_data_without_permission(tmp_path: Path) -> None:
    src = sample_split(tmp_path / "src", n=3)
    with pytest.raises(ConversionRefused) as exc:
        FOLDER.write([src], tmp_path / "out", WriteOptions())
    report = exc.value.report
    assert report.loss("boxes").count > 0 and report.loss("unlabeled_images").count == 3
    assert "lossy" in report.render_text() and not (tmp_path / "out").exists()


def test_attr_json_validates_against_its_schema_and_round_trips(tmp_path: Path) -> None:
    root = tmp_path / "attrs"
    jpeg(root / "images/a.jpg", 40, 30)
    jpeg(root / "images/b.jpg", 40, 30)
    doc = {"format": "dsgen-attr-json", "version": 1,
           "schema": {"weather": {"type": "enum", "values": ["sunny", "rain"]}, "blurred": {"type": "bool"},
                      "people": {"type": "int", "min": 0}},
           "images": {"a.jpg": {"weather": "sunny", "blurred": False, "people": 3},
                      "b.jpg": {"weather": "snow", "people": -1, "mood": "x"}}}
    (root / "attributes.json").write_text(json.dumps(doc))
    report = ValidationReport()
    res = ATTR.read(root, report)
    assert report.get("attr_value_not_allowed").count == 2
    assert report.get("attr_unknown").examples == ["b.jpg: mood"]
    doc["images"]["b.jpg"] = {"weather": "rain", "people": 0}
    (root / "attributes.json").write_text(json.dumps(doc))
    report = ValidationReport()
    s = ATTR.read(root, report).splits[0]
    assert not report.findings
    assert [r["annotation_type"] for r in s.tables.annotations.to_pylist()] == ["ATTRIBUTE", "ATTRIBUTE"]
    ATTR.write([s], tmp_path / "out", WriteOptions())
    assert json.loads((tmp_path / "out/attributes.json").read_text()) == doc
    assert res is not None


def test_attr_json_bare_mapping_gets_an_inferred_schema(tmp_path: Path) -> None:
    jpeg(tmp_path / "x.jpg", 8, 8)
    (tmp_path / "labels.json").write_text(json.dumps({"x.jpg": {"night": True, "cars": 2}}))
    ranking = FormatRegistry.builtin().rank(tmp_path)
    assert ranking.best.format == "attr_json" and not ranking.ambiguous
    s = ATTR.read(tmp_path, ValidationReport()).splits[0]
    assert s.tables.meta["attr_schema"] == {"cars": {"type": "int"}, "night": {"type": "bool"}}


def test_unlabeled_folder_and_single_file(tmp_path: Path) -> None:
    jpeg(tmp_path / "a/b/one.jpg", 10, 12, orientation=8)
    jpeg(tmp_path / "a/two.jpg", 10, 10)
    (tmp_path / "a/notes.txt").write_text("not an image")
    s = UNLABELED.read(tmp_path / "a", ValidationReport()).splits[0]
    assert sorted(s.tables.images.column("file_name").to_pylist()) == ["b/one.jpg", "two.jpg"]
    one = UNLABELED.read(tmp_path / "a/b/one.jpg", ValidationReport()).splits[0]
    assert one.tables.images.select(["file_name", "width", "height"]).to_pylist() == [
        {"file_name": "one.jpg", "width": 12, "height": 10}]
    ranking = FormatRegistry.builtin().rank(tmp_path / "a/b/one.jpg")
    assert ranking.best.format == "unlabeled" and ranking.best.score >= 0.9


def test_coco_adapter_writes_one_json_per_split_that_pycocotools_loads(tmp_path: Path) -> None:
    from pycocotools.coco import COCO as PyCoco

    a = sample_split(tmp_path / "a", n=3, seed=1)
    b = sample_split(tmp_path / "b", n=2, seed=2)
    COCO.write([a, Split("val", b.tables, b.images_root)], tmp_path / "out", WriteOptions())
    for split, src in (("train", a), ("val", b)):
        gt = PyCoco(str(tmp_path / f"out/annotations/instances_{split}.json"))
        assert len(gt.getImgIds()) == src.tables.images.num_rows
        assert len(gt.getAnnIds()) == src.tables.annotations.num_rows
        assert (tmp_path / f"out/images/{split}").is_dir()
    res = COCO.read(tmp_path / "out", ValidationReport())
    assert [s.name for s in res.splits] == ["train", "val"]
    assert res.split("val").images_root == tmp_path / "out/images/val"
    assert objects(res.split("train")) == objects(a)


def test_registry_is_explicit_and_ranks_every_written_format(tmp_path: Path) -> None:
    reg = FormatRegistry.builtin()
    assert reg.names() == [m.rsplit(".", 1)[1] for m in BUILTIN_FORMATS]
    with pytest.raises(UnknownFormat):
        reg.get("pascal")
    src = sample_split(tmp_path / "src", n=4)
    for name in ("coco", "yolo", "yolo_darknet", "voc", "cvat_xml"):
        reg.get(name).write([src], tmp_path / name, WriteOptions(allow_lossy=True))
        ranking = reg.rank(tmp_path / name)
        assert ranking.best.format == name and not ranking.ambiguous, ranking.message()
        best = ranking.best
        assert best.images == 4 and len(best.classes) == 16, best
        assert best.annotations == pytest.approx(src.tables.annotations.num_rows, rel=0.3)
    # a zip's single top folder is looked into
    (tmp_path / "wrapped").mkdir()
    os.rename(tmp_path / "voc", tmp_path / "wrapped/export")
    assert reg.rank(tmp_path / "wrapped").best.format == "voc"


def test_two_formats_in_one_folder_are_ambiguous(tmp_path: Path) -> None:
    src = sample_split(tmp_path / "src", n=2)
    reg = FormatRegistry.builtin()
    reg.get("yolo").write([src], tmp_path / "both", WriteOptions(allow_lossy=True))
    reg.get("cvat_xml").write([src], tmp_path / "cvat", WriteOptions(allow_lossy=True))
    os.rename(tmp_path / "cvat/annotations.xml", tmp_path / "both/annotations.xml")
    ranking = reg.rank(tmp_path / "both")
    assert ranking.ambiguous
    assert {c.format for c in ranking.candidates[:2]} == {"yolo", "cvat_xml"}
    assert "choose the format" in ranking.message()


def test_export_destination_rules(tmp_path: Path) -> None:
    src = sample_split(tmp_path / "src", n=2)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken/keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        YOLO.write([src], tmp_path / "taken", WriteOptions(allow_lossy=True))
    assert (tmp_path / "taken/keep.txt").read_text() == "mine"
    gone = Split("train", src.tables, tmp_path / "nowhere")
    with pytest.raises(ConversionRefused) as exc:
        YOLO.write([gone], tmp_path / "x", WriteOptions(allow_lossy=True))
    assert "no file to write" in exc.value.report.problems[0] and not (tmp_path / "x").exists()
    rep = YOLO.write([gone], tmp_path / "labels-only", WriteOptions(images=ImageMode.NONE, allow_lossy=True))
    assert rep.written["images"] == 0 and rep.written["label_files"] == 2
    with pytest.raises(ConversionRefused):
        YOLO.write([src], tmp_path / "y", WriteOptions(class_order=ClassOrder.GIVEN, allow_lossy=True))
