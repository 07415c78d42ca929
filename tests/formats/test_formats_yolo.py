"""YOLO (Ultralytics and CVAT's YOLO 1.1): reading users' layouts, writing, round trips, peers as oracles."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from fmt_helpers import assert_close_objects, jpeg, objects, read, sample_split, sizes

from dsgen_core.formats.base import ClassOrder, ConversionRefused, Split, WriteOptions
from dsgen_core.formats.coco import FORMAT as COCO
from dsgen_core.formats.yolo import FORMAT as YOLO
from dsgen_core.formats.yolo import label_path
from dsgen_core.formats.yolo_darknet import FORMAT as DARKNET
from dsgen_core.validation import ValidationReport


def _ultralytics(root: Path) -> Path:
    """A hand-made Ultralytics dataset: names as a dict, train folder, val as a ./ list, a portrait EXIF JPEG."""
    jpeg(root / "images/train/a.jpg", 200, 100)
    jpeg(root / "images/train/sub/b.jpg", 64, 32)
    jpeg(root / "images/val/c.jpg", 100, 50, orientation=6)  # stored 100x50, displayed 50x100
    (root / "labels/train/sub").mkdir(parents=True)
    (root / "labels/val").mkdir(parents=True)
    (root / "labels/train/a.txt").write_text("0 0.5 0.5 0.2 0.4\n1 0.1 0.1 0.3 0.1 0.2 0.3\n")
    (root / "labels/train/sub/b.txt").write_text("1 0.25 0.5 0.5 0.5 0.87\n")
    (root / "labels/val/c.txt").write_text("0 0.5 0.5 1 1\n")
    (root / "labels/train/orphan.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    (root / "labels/train.cache").write_bytes(b"stale cache")
    (root / "val.txt").write_text("./images/val/c.jpg\n")
    (root / "data.yaml").write_text("train: images/train\nval: val.txt\nnames:\n  0: car\n  1: person\n")
    return root


def test_ultralytics_reader_converts_rows_to_pixels_of_the_displayed_image(tmp_path: Path) -> None:
    res, report = read(YOLO, _ultralytics(tmp_path / "ds"))
    assert [s.name for s in res.splits] == ["train", "val"]
    train, val = res.split("train"), res.split("val")
    assert train.images_root == tmp_path / "ds/images/train"
    assert sorted(train.tables.images.column("file_name").to_pylist()) == ["a.jpg", "sub/b.jpg"]
    assert train.tables.categories.to_pylist()[0]["category_id"] == 0  # ids kept, never shifted
    a = {r["annotation_type"]: r for r in train.tables.annotations.to_pylist() if r["image_id"] == 1}
    box = a["BBOX"]
    assert (box["bbox_x"], box["bbox_y"], box["bbox_w"], box["bbox_h"]) == pytest.approx((80, 30, 40, 40))
    seg = a["SEGMENTATION"]
    assert seg["polygons"] == [pytest.approx([20, 10, 60, 10, 40, 30])]
    assert seg["area"] == pytest.approx(0.5 * 40 * 20)  # shoelace
    assert (seg["bbox_x"], seg["bbox_y"], seg["bbox_w"], seg["bbox_h"]) == pytest.approx((20, 10, 40, 20))
    scored = [r for r in train.tables.annotations.to_pylist() if r["score"] is not None]
    assert [r["score"] for r in scored] == [pytest.approx(0.87)] and scored[0]["is_machine"]
    v = val.tables.images.to_pylist()[0]
    assert (v["width"], v["height"], v["exif_orientation"]) == (50, 100, 6)
    vb = val.tables.annotations.to_pylist()[0]
    assert (vb["bbox_w"], vb["bbox_h"]) == pytest.approx((50, 100))
    assert report.get("label_without_image").examples == ["labels/train/orphan.txt"]
    assert report.get("exif_rotation").count == 1
    assert not report.has_errors


def test_faults_in_label_files_name_file_and_line(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    for n in ("a", "b"):
        jpeg(root / f"images/train/{n}.jpg", 40, 40)
    jpeg(root / "images/train/b.png", 40, 40)  # shares b.txt with b.jpg
    (root / "labels/train").mkdir(parents=True)
    (root / "labels/train/a.txt").write_text("0 0.5 0.5 0.2\n3 0.5 0.5 0.2 0.2\n0 1.2 0.5 0.2 0.2\nx 1 2 3 4\n")
    (root / "data.yaml").write_text("train: images/train\nval: images/train\nnames: [car, person]\n")
    report = ValidationReport()
    YOLO.read(root, report)
    assert report.get("malformed_line").examples == ["labels/train/a.txt:1: 4 columns",
                                                     "labels/train/a.txt:4: 'x 1 2 3 4' is not numbers"]
    assert report.get("class_out_of_range").examples == ["labels/train/a.txt:2: class 3 (names has 2)"]
    assert report.get("coords_out_of_range").count == 1
    assert report.get("label_shared").count == 1
    assert report.get("split_repeated") is not None


def test_names_rules_follow_ultralytics(tmp_path: Path) -> None:
    jpeg(tmp_path / "images/train/a.jpg", 10, 10)
    for text, code in (("names: {0: a, 2: b}", "bad_type"), ("nc: 3\nnames: [a, b]", "bad_type"),
                       ("names: [a]\nval: x", "missing_key"), ("train: [unclosed", "yaml_unreadable")):
        (tmp_path / "data.yaml").write_text(f"train: images/train\n{text}\n" if code != "missing_key" else text)
        report = ValidationReport()
        assert YOLO.read(tmp_path / "data.yaml", report) is None, text
        assert report.has_errors and report.errors[0].code == code, (text, report.render_text())


def test_label_path_uses_the_last_images_segment() -> None:
    assert label_path("/d/images/a/images/x.jpg") == "/d/images/a/labels/x.txt"
    assert label_path("/d/train/images/x.JPG") == "/d/train/labels/x.txt"
    assert label_path("/d/flat/x.png") == "/d/flat/x.txt"


def test_cvat_yolo11_export_shape_is_read(tmp_path: Path) -> None:
    """As CVAT writes it: data/ prefixes, empty .txt for images without boxes, labels beside images."""
    root = tmp_path / "cvat"
    jpeg(root / "obj_train_data/frame_000000.jpg", 100, 80)
    jpeg(root / "obj_train_data/frame_000001.jpg", 100, 80)
    (root / "obj_train_data/frame_000000.txt").write_text("1 0.500000 0.500000 0.200000 0.250000\n")
    (root / "obj_train_data/frame_000001.txt").write_text("")
    (root / "obj.names").write_text("car\nperson\n")
    (root / "obj.data").write_text("classes = 2\ntrain = data/train.txt\nnames = data/obj.names\nbackup = backup/\n")
    (root / "train.txt").write_text("data/obj_train_data/frame_000000.jpg\ndata/obj_train_data/frame_000001.jpg\n")
    report = ValidationReport()
    res = DARKNET.read(root, report)
    assert not report.findings, report.render_text()
    s = res.split("train")
    assert s.tables.images.column("num_annotations").to_pylist() == [1, 0]
    ann = s.tables.annotations.to_pylist()[0]
    assert ann["category_id"] == 1
    assert (ann["bbox_x"], ann["bbox_y"], ann["bbox_w"], ann["bbox_h"]) == pytest.approx((40, 30, 20, 20))


def test_coco_to_yolo_to_coco_keeps_boxes_polygons_and_names(tmp_path: Path) -> None:
    src = sample_split(tmp_path / "src", n=8, polygon_fraction=1.0, rle_fraction=0.0)
    # detection: boxes to 1e-6 of the image size, class names by id
    YOLO.write([src], tmp_path / "det", WriteOptions(task="detect", allow_lossy=True))
    det = YOLO.read(tmp_path / "det", ValidationReport()).split("train")
    assert_close_objects(objects(det, ("BBOX",)), objects(src), sizes(src))
    # segmentation: every polygon point to 1e-6 of the image size
    plan = YOLO.plan([src], WriteOptions())
    assert plan.loss("polygons") is None  # auto chose segmentation rows: every object has an outline
    YOLO.write([src], tmp_path / "seg", WriteOptions(allow_lossy=True))
    seg = YOLO.read(tmp_path / "seg", ValidationReport()).split("train")
    size = sizes(src)
    want = {r["annotation_id"]: r for r in src.tables.annotations.to_pylist()}
    files = dict(zip(src.tables.images.column("image_id").to_pylist(), src.tables.images.column("file_name").to_pylist(),
                     strict=True))
    got = seg.tables.annotations.to_pylist()
    assert len(got) == len(want)
    for g, w in zip(got, sorted(want.values(), key=lambda r: (r["image_id"], r["annotation_id"])), strict=True):
        W, H = size[files[w["image_id"]]]
        assert len(g["polygons"][0]) == len(w["polygons"][0])
        for k, (a, b) in enumerate(zip(g["polygons"][0], w["polygons"][0], strict=True)):
            assert abs(a - b) <= 1e-6 * (W if k % 2 == 0 else H)
    # and back to COCO: names and ids as in the source
    COCO.write([seg], tmp_path / "back", WriteOptions(allow_lossy=True))
    back = COCO.read(tmp_path / "back", ValidationReport()).splits[0]
    assert back.tables.categories.column("name").to_pylist() == src.tables.categories.column("name").to_pylist()


def test_class_order_and_lossy_refusal(tmp_path: Path) -> None:
    src = sample_split(tmp_path / "src", n=6)
    with pytest.raises(ConversionRefused) as exc:
        YOLO.write([src], tmp_path / "refused", WriteOptions())
    assert exc.value.report.loss("attributes").count > 0
    assert not (tmp_path / "refused").exists()
    names = src.tables.categories.column("name").to_pylist()
    given = ("person", "car")
    rep = YOLO.write([src], tmp_path / "given", WriteOptions(class_order=ClassOrder.GIVEN, class_names=given,
                                                             allow_lossy=True))
    assert rep.loss("classes").count > 0  # objects of the other 14 classes are not written, and said so
    doc = (tmp_path / "given/data.yaml").read_text()
    assert "0: person\n  1: car" in doc
    rows = [ln.split()[0] for p in (tmp_path / "given/labels").rglob("*.txt") for ln in p.read_text().splitlines()]
    assert set(rows) <= {"0", "1"}
    YOLO.write([src], tmp_path / "byname", WriteOptions(class_order=ClassOrder.NAME, allow_lossy=True))
    back = YOLO.read(tmp_path / "byname", ValidationReport()).split("train")
    assert back.tables.categories.column("name").to_pylist() == sorted(names)


def test_supervision_reads_our_yolo_export_with_the_same_boxes(tmp_path: Path) -> None:
    sv = pytest.importorskip("supervision")
    src = sample_split(tmp_path / "src", n=6, nested=False)  # supervision does not look into sub-folders
    YOLO.write([src], tmp_path / "out", WriteOptions(task="detect", allow_lossy=True))
    ds = sv.DetectionDataset.from_yolo(str(tmp_path / "out/images/train"), str(tmp_path / "out/labels/train"),
                                       str(tmp_path / "out/data.yaml"))
    want = objects(src)
    assert len(ds) == len(want)
    for path, _image, det in ds:
        name = Path(path).relative_to(tmp_path / "out/images/train").as_posix()
        got = sorted((ds.classes[c], x0, y0, x1 - x0, y1 - y0) for (x0, y0, x1, y1), c in zip(det.xyxy, det.class_id,
                                                                                           strict=True))
        assert_close_objects({name: got}, {name: want[name]}, sizes(src))


def test_we_read_supervision_yolo_export(tmp_path: Path) -> None:
    sv = pytest.importorskip("supervision")
    import numpy as np

    jpeg(tmp_path / "imgs/a.jpg", 120, 60)
    jpeg(tmp_path / "imgs/b.jpg", 80, 80)
    dets = {
        str(tmp_path / "imgs/a.jpg"): sv.Detections(xyxy=np.array([[10.0, 5.0, 50.0, 25.0], [0, 0, 120, 60]]),
                                                    class_id=np.array([1, 0])),
        str(tmp_path / "imgs/b.jpg"): sv.Detections(xyxy=np.array([[20.0, 20.0, 40.0, 60.0]]), class_id=np.array([1])),
    }
    ds = sv.DetectionDataset(classes=["cat", "dog"], images=list(dets), annotations=dets)
    out = tmp_path / "sv"
    ds.as_yolo(str(out / "images/train"), str(out / "labels/train"), str(out / "data.yaml"))
    res = YOLO.read(out, ValidationReport())
    got = objects(res.splits[0])
    # supervision writes 5 decimals: 1e-5 of 120 px is 1.2e-3 px
    assert got["a.jpg"] == [("cat", 0.0, 0.0, 120.0, 60.0), ("dog", *(pytest.approx(v, abs=2e-3) for v in (10, 5, 40, 20)))]
    assert got["b.jpg"] == [("dog", *(pytest.approx(v, abs=2e-3) for v in (20, 20, 20, 40)))]


def test_datumaro_imports_our_yolo11_export(tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    src = sample_split(tmp_path / "src", n=5)
    DARKNET.write([src], tmp_path / "out", WriteOptions(allow_lossy=True))
    ds = dm.Dataset.import_from(str(tmp_path / "out"), "yolo")
    labels = ds.categories()[dm.AnnotationType.label]
    assert [lab.name for lab in labels] == src.tables.categories.column("name").to_pylist()
    want = objects(src)
    size = sizes(src)
    got: dict[str, list] = {}
    for item in ds:
        name = next(n for n in want if n.rsplit(".", 1)[0] == item.id)
        got[name] = sorted((labels[a.label].name, *a.get_bbox()) for a in item.annotations)
    assert_close_objects(got, want, size)


def test_multi_split_export_writes_data_yaml_with_each_split(tmp_path: Path) -> None:
    a = sample_split(tmp_path / "a", n=3, seed=1)
    b = sample_split(tmp_path / "b", n=2, seed=2, name="val")
    YOLO.write([a, Split("val", b.tables, b.images_root)], tmp_path / "out",
               WriteOptions(images="copy", allow_lossy=True))
    import yaml

    doc = yaml.safe_load((tmp_path / "out/data.yaml").read_text())
    assert (doc["train"], doc["val"], doc["nc"]) == ("images/train", "images/val", 16)
    assert "path" not in doc  # Ultralytics would resolve a relative path against its working directory
    res = YOLO.read(tmp_path / "out", ValidationReport())
    assert [(s.name, s.tables.images.num_rows) for s in res.splits] == [("train", 3), ("val", 2)]
    first = sorted((tmp_path / "out/images/train").rglob("*.jpg"))[0]
    assert not math.isclose(first.stat().st_ino, 0) and first.stat().st_nlink == 1  # copied, not linked
    assert json.loads(json.dumps(doc["names"]))  # names written as a mapping id → name


def test_clean_files_parsed_at_once_match_the_row_by_row_reading(tmp_path: Path) -> None:
    """The vectorised path (clean files) and the row-by-row path (any irregularity) give the same tables."""
    src = sample_split(tmp_path / "src", n=6, nested=False)
    YOLO.write([src], tmp_path / "clean", WriteOptions(task="detect", allow_lossy=True))
    fast = YOLO.read(tmp_path / "clean", ValidationReport()).split("train").tables
    labels = sorted((tmp_path / "clean/labels/train").glob("*.txt"))
    first = next(p for p in labels if p.read_text())
    first.write_text(first.read_text() + "\n")  # a blank line sends every file through the slow path
    slow = YOLO.read(tmp_path / "clean", ValidationReport()).split("train").tables
    assert fast.annotations.num_rows == src.tables.annotations.num_rows
    assert fast.annotations.to_pylist() == slow.annotations.to_pylist()
    assert fast.images.to_pylist() == slow.images.to_pylist()


def test_jpeg_markers_give_the_size_pillow_gives(tmp_path: Path) -> None:
    from PIL import Image

    from dsgen_core.formats.headers import header_size

    cases = [jpeg(tmp_path / f"o{o}.jpg", 33, 17, orientation=o) for o in (None, 1, 5, 6, 7, 8)]
    Image.new("RGB", (21, 9)).save(tmp_path / "prog.jpg", progressive=True)
    Image.new("CMYK", (12, 30)).save(tmp_path / "cmyk.jpg")
    Image.new("L", (5, 4)).save(tmp_path / "gray.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF")
    for path in [*cases, tmp_path / "prog.jpg", tmp_path / "cmyk.jpg", tmp_path / "gray.png"]:
        with Image.open(path) as img:
            w, h = img.size
            o = img.getexif().get(274)
        want = (h, w) if o in (5, 6, 7, 8) else (w, h)
        got = header_size(path)
        assert (got.width, got.height, got.orientation) == (*want, o), path.name
    assert header_size(tmp_path / "broken.jpg").error
    assert header_size(tmp_path / "absent.jpg").error == "missing"


def test_segment_rows_approximate_rle_masks_and_say_so(tmp_path: Path) -> None:
    src = sample_split(tmp_path / "src", n=12, rle_fraction=0.3, polygon_fraction=0.3)
    rep = YOLO.write([src], tmp_path / "out", WriteOptions(task="segment", allow_lossy=True))
    crowd = [r for r in src.tables.annotations.to_pylist() if r["rle"]]
    assert rep.loss("rle").count == len(crowd) > 0 and rep.loss("iscrowd").count == len(crowd)
    back = {r["annotation_id"]: r for r in YOLO.read(tmp_path / "out", ValidationReport()).split("train")
            .tables.annotations.to_pylist()}
    assert len(back) == src.tables.annotations.num_rows
    order = sorted(src.tables.annotations.to_pylist(), key=lambda r: (r["image_id"], r["annotation_id"]))
    for new_id, r in enumerate(order, 1):
        if r["rle"]:  # contour of the mask: its box within a pixel, its area within 15 % of the pixel count
            got = back[new_id]
            assert abs(got["bbox_x"] - r["bbox_x"]) <= 1.0 and abs(got["bbox_w"] - r["bbox_w"]) <= 1.5
            assert abs(got["area"] - r["area"]) <= 0.15 * r["area"]
