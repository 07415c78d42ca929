"""Pascal VOC and CVAT for images XML: CVAT-shaped inputs, faults, lossless round trips, peers as oracles."""

from __future__ import annotations

import math
from pathlib import Path

import orjson
import pytest
from fmt_helpers import assert_close_objects, jpeg, objects, read, sample_split, sizes

from dsgen_core.formats.base import ImageMode, Split, WriteOptions
from dsgen_core.formats.coco import FORMAT as COCO
from dsgen_core.formats.cvat_xml import FORMAT as CVAT
from dsgen_core.formats.voc import FORMAT as VOC
from dsgen_core.validation import ValidationReport

_VOC_OBJECT = """
  <object><name>{name}</name><pose>Unspecified</pose><truncated>{t}</truncated><occluded>{o}</occluded>
    <difficult>{d}</difficult>
    <bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox>
    <attributes><attribute><name>color</name><value>red</value></attribute>
      <attribute><name>parked</name><value>true</value></attribute>
      <attribute><name>doors</name><value>4</value></attribute>
      <attribute><name>code</name><value>007</value></attribute></attributes>
  </object>"""


def _voc(root: Path, size: str = "<width></width><height></height><depth></depth>") -> Path:
    """As CVAT's "PASCAL VOC 1.1" writes it: empty <size>, float boxes, <attributes>, ImageSets/Main/default.txt."""
    jpeg(root / "JPEGImages/frame_000001.jpg", 320, 240)
    jpeg(root / "JPEGImages/frame_000002.jpg", 320, 240)
    objs = _VOC_OBJECT.format(name="car", t=1, o=0, d=0, x0="10.0", y0="20.5", x1="110.25", y1="70.0")
    objs += _VOC_OBJECT.format(name="person", t=0, o=1, d=1, x0="0.0", y0="0.0", x1="320.0", y1="240.0")
    (root / "Annotations").mkdir(parents=True)
    for n, body in (("frame_000001", objs), ("frame_000002", "")):
        (root / f"Annotations/{n}.xml").write_text(
            f"<annotation><folder></folder><filename>{n}.jpg</filename><source><database>Unknown</database>"
            f"</source><size>{size}</size><segmented>0</segmented>{body}</annotation>")
    (root / "ImageSets/Main").mkdir(parents=True)
    (root / "ImageSets/Main/default.txt").write_text("frame_000001\nframe_000002\n")
    (root / "labelmap.txt").write_text("# label:color_rgb:parts:actions\nbackground:0,0,0::\nperson:1,2,3::\ncar:4,5,6::\n")
    return root


def test_voc_reader_keeps_flags_attributes_and_boxes_without_offset(tmp_path: Path) -> None:
    res, report = read(VOC, _voc(tmp_path / "voc"))
    assert not report.findings, report.render_text()
    s = res.split("default")
    assert s.tables.categories.column("name").to_pylist() == ["person", "car"]  # labelmap order, background left out
    car, person = s.tables.annotations.to_pylist()
    assert (car["category_id"], car["bbox_x"], car["bbox_y"], car["bbox_w"], car["bbox_h"]) == (2, 10.0, 20.5, 100.25,
                                                                                              49.5)
    assert orjson.loads(car["attributes"]) == {"occluded": False, "truncated": True, "color": "red", "parked": True,
                                               "doors": 4, "code": "007"}
    assert orjson.loads(person["attributes"])["difficult"] is True
    assert s.tables.images.column("num_annotations").to_pylist() == [2, 0]


def test_voc_faults_size_mismatch_unparsable_xml_and_entity_bombs(tmp_path: Path) -> None:
    root = _voc(tmp_path / "voc", size="<width>640</width><height>480</height><depth>3</depth>")
    (root / "Annotations/frame_000003.xml").write_text("<annotation><object><name>car</name>")
    (root / "Annotations/frame_000004.xml").write_text(
        '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xxxxxxxxxx"><!ENTITY y "&x;&x;&x;&x;">]>'
        "<annotation><filename>&y;</filename></annotation>")
    (root / "ImageSets/Main/default.txt").write_text("frame_000001\nframe_000002\nframe_000003\nframe_000004\n")
    report = ValidationReport()
    VOC.read(root, report)
    assert report.get("size_mismatch").count == 2
    assert "XML says 640x480, file is 320x240" in report.get("size_mismatch").examples[0]
    bad = report.get("xml_unreadable")
    assert bad.count == 2 and any("frame_000003.xml" in e for e in bad.examples)
    assert any("unsafe" in e for e in bad.examples)


def test_coco_to_voc_to_coco_keeps_boxes_and_attributes(tmp_path: Path) -> None:
    src = sample_split(tmp_path / "src", n=6, polygon_fraction=0.0, rle_fraction=0.0)
    rep = VOC.write([src], tmp_path / "voc", WriteOptions(images=ImageMode.SYMLINK))
    assert not rep.lossy, rep.render_text()  # boxes with occluded/pose/color attributes: VOC carries all of it
    assert all(p.is_symlink() for p in (tmp_path / "voc/JPEGImages").rglob("*.jpg"))
    back = VOC.read(tmp_path / "voc", ValidationReport()).split("train")
    assert_close_objects(objects(back), objects(src), sizes(src), rel=0)
    want = [orjson.loads(a) for a in src.tables.annotations.column("attributes").to_pylist()]
    got = [orjson.loads(a) for a in back.tables.annotations.column("attributes").to_pylist()]
    for g, w in zip(got, want, strict=True):
        w = {k: v for k, v in w.items() if not (k == "rotation" and v == 0)}
        assert g == w


def test_supervision_and_datumaro_read_our_voc(tmp_path: Path) -> None:
    sv = pytest.importorskip("supervision")
    dm = pytest.importorskip("datumaro")
    src = sample_split(tmp_path / "src", n=5, nested=False)
    VOC.write([src], tmp_path / "voc", WriteOptions(allow_lossy=True))
    want = objects(src)
    ds = sv.DetectionDataset.from_pascal_voc(str(tmp_path / "voc/JPEGImages"), str(tmp_path / "voc/Annotations"))
    got = {}
    for path, _img, det in ds:
        got[Path(path).name] = sorted((ds.classes[c], x0 + 1, y0 + 1, x1 - x0 - 1, y1 - y0 - 1)
                                      for (x0, y0, x1, y1), c in zip(det.xyxy, det.class_id, strict=True))
    # supervision reads VOC minima as 1-based (xmin - 1); shifted back, its boxes are ours (float32)
    assert_close_objects(got, want, sizes(src), rel=1e-5)
    d = dm.Dataset.import_from(str(tmp_path / "voc"), "voc_detection")
    labels = d.categories()[dm.AnnotationType.label]
    got = {f"{item.id}.jpg": sorted((labels[a.label].name, *a.get_bbox()) for a in item.annotations
                                    if a.type == dm.AnnotationType.bbox) for item in d}
    assert_close_objects(got, want, sizes(src), rel=1e-6)  # Datumaro reads VOC with no offset, as we do
    occluded = [a.attributes.get("occluded") for item in d for a in item.annotations]
    assert True in occluded


def test_we_read_supervision_voc_export(tmp_path: Path) -> None:
    sv = pytest.importorskip("supervision")
    import numpy as np

    jpeg(tmp_path / "imgs/a.jpg", 100, 60)
    dets = {str(tmp_path / "imgs/a.jpg"): sv.Detections(xyxy=np.array([[10.0, 5.0, 50.0, 25.0]]),
                                                        class_id=np.array([1]))}
    sv.DetectionDataset(classes=["cat", "dog"], images=list(dets), annotations=dets).as_pascal_voc(
        str(tmp_path / "out/JPEGImages"), str(tmp_path / "out/Annotations"))
    res = VOC.read(tmp_path / "out", ValidationReport())
    got = objects(res.splits[0])["a.jpg"]
    # supervision writes xmin + 1 and xmax as is (1-based inclusive); we read the numbers as written, like CVAT
    assert got == [("dog", 11.0, 6.0, 39.0, 19.0)]


# --------------------------------------------------------------------------------------------
# CVAT for images 1.1

_CVAT = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><id>7</id><name>t</name><size>2</size><mode>annotation</mode>
    <labels>
      <label><name>car</name><color>#ff0000</color><type>any</type><attributes>
        <attribute><name>color</name><mutable>False</mutable><input_type>select</input_type>
          <default_value>red</default_value><values>red\nblue</values></attribute>
        <attribute><name>parked</name><mutable>True</mutable><input_type>checkbox</input_type>
          <default_value>false</default_value><values>false</values></attribute>
        <attribute><name>speed</name><mutable>False</mutable><input_type>number</input_type>
          <default_value>0</default_value><values>0\n200\n1</values></attribute>
        <attribute><name>plate</name><mutable>False</mutable><input_type>text</input_type>
          <default_value></default_value><values></values></attribute>
      </attributes></label>
      <label><name>lane</name><color>#00ff00</color><type>polyline</type><attributes></attributes></label>
      <label><name>kp</name><color>#0000ff</color><type>points</type><attributes></attributes></label>
      <label><name>weather</name><color>#00ffff</color><type>tag</type><attributes>
        <attribute><name>kind</name><mutable>False</mutable><input_type>radio</input_type>
          <default_value>sunny</default_value><values>sunny\nrain</values></attribute></attributes></label>
    </labels></task><dumped>2026-01-01</dumped></meta>
  <image id="0" name="a/frame_0.jpg" width="64" height="48">
    <box label="car" source="manual" occluded="1" xtl="1.50" ytl="2.25" xbr="30.00" ybr="20.75" z_order="2" rotation="12.50">
      <attribute name="color">blue</attribute><attribute name="parked">true</attribute>
      <attribute name="speed">12.5</attribute><attribute name="plate">007</attribute>
    </box>
    <polygon label="car" source="auto" occluded="0" points="10.00,10.00;20.00,10.00;20.00,20.00" z_order="0" group_id="3">
      <attribute name="color">red</attribute><attribute name="parked">false</attribute>
      <attribute name="speed">0</attribute><attribute name="plate"></attribute>
    </polygon>
    <polyline label="lane" source="manual" occluded="0" points="0.00,40.00;30.50,35.00;63.00,30.00" z_order="0">
    </polyline>
    <points label="kp" source="manual" occluded="0" points="5.00,6.00;7.50,8.00" z_order="1">
    </points>
    <ellipse label="car" source="manual" occluded="0" cx="40.00" cy="30.00" rx="5.00" ry="3.00" z_order="0">
      <attribute name="color">red</attribute><attribute name="parked">false</attribute>
      <attribute name="speed">1</attribute><attribute name="plate">x</attribute>
    </ellipse>
    <mask label="car" source="manual" occluded="0" rle="0, 3, 2, 1, 1, 3" left="10" top="5" width="5" height="2" z_order="0">
      <attribute name="color">red</attribute><attribute name="parked">false</attribute>
      <attribute name="speed">2</attribute><attribute name="plate">y</attribute>
    </mask>
    <tag label="weather" source="manual">
      <attribute name="kind">rain</attribute>
    </tag>
  </image>
  <image id="1" name="a/frame_1.jpg" width="64" height="48">
  </image>
</annotations>
"""


def _cvat(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "annotations.xml").write_text(_CVAT)
    jpeg(root / "images/a/frame_0.jpg", 64, 48)
    jpeg(root / "images/a/frame_1.jpg", 64, 48)
    return root


def _semantic(split: Split) -> list[dict]:
    rows = []
    for a in split.tables.annotations.to_pylist():
        rows.append({k: a[k] for k in ("image_id", "category_id", "annotation_type", "bbox_x", "bbox_y", "bbox_w",
                                       "bbox_h", "polygons", "keypoints", "is_machine")}
                    | {"attributes": orjson.loads(a["attributes"] or "{}"), "extra": orjson.loads(a["extra"] or "{}"),
                       "area": None if a["area"] is None else round(a["area"], 6), "rle": a["rle"]})
    return rows


def test_cvat_xml_reader_maps_every_shape(tmp_path: Path) -> None:
    res, report = read(CVAT, _cvat(tmp_path / "cvat"))
    assert not report.findings, report.render_text()
    s = res.split("default")
    rows = {r["extra"]["shape"]: r for r in _semantic(s)}
    box = rows["box"]
    assert (box["bbox_x"], box["bbox_y"], box["bbox_w"], box["bbox_h"]) == (1.5, 2.25, 28.5, 18.5)
    assert box["attributes"] == {"occluded": True, "rotation": 12.5, "color": "blue", "parked": True, "speed": 12.5,
                                 "plate": "007"}
    assert box["extra"] == {"shape": "box", "z_order": 2}
    poly = rows["polygon"]
    assert poly["is_machine"] and poly["extra"] == {"shape": "polygon", "source": "auto", "group_id": 3}
    assert poly["area"] == 50.0 and poly["attributes"]["parked"] is False and poly["attributes"]["speed"] == 0
    assert rows["polyline"]["annotation_type"] == "SEGMENTATION" and rows["polyline"]["area"] is None
    assert rows["points"]["keypoints"] == [5.0, 6.0, 2.0, 7.5, 8.0, 2.0]
    assert rows["ellipse"]["area"] == round(math.pi * 15, 6)
    mask = rows["mask"]
    assert (mask["bbox_x"], mask["bbox_y"], mask["bbox_w"], mask["bbox_h"], mask["area"]) == (10, 5, 5, 2, 7.0)
    from dsgen_core.formats.masks import decode_coco_rle

    m = decode_coco_rle(mask["rle"])
    assert m.shape == (48, 64) and m.sum() == 7
    assert m[5, 10:15].tolist() == [1, 1, 1, 0, 0] and m[6, 10:15].tolist() == [1, 0, 1, 1, 1]  # row by row
    tag = rows["tag"]
    assert tag["annotation_type"] == "LABEL" and tag["attributes"] == {"kind": "rain"}


def test_cvat_xml_round_trip_keeps_every_attribute_and_shape(tmp_path: Path) -> None:
    first = CVAT.read(_cvat(tmp_path / "cvat"), ValidationReport()).split("default")
    rep = CVAT.write([first], tmp_path / "out", WriteOptions())
    assert not rep.lossy, rep.render_text()
    report = ValidationReport()
    second = CVAT.read(tmp_path / "out", report).split("default")
    assert not report.findings, report.render_text()
    assert _semantic(second) == _semantic(first)
    assert second.tables.categories.to_pylist() == first.tables.categories.to_pylist()  # label specs included
    assert (tmp_path / "out/images/a/frame_1.jpg").stat().st_ino == (tmp_path / "cvat/images/a/frame_1.jpg").stat().st_ino


def test_coco_to_cvat_xml_to_coco_keeps_everything_but_iscrowd(tmp_path: Path) -> None:
    src = sample_split(tmp_path / "src", n=6)
    plan = CVAT.plan([src], WriteOptions())
    assert [x.what for x in plan.losses] == ["iscrowd"]
    CVAT.write([src], tmp_path / "xml", WriteOptions(allow_lossy=True))
    back = CVAT.read(tmp_path / "xml", ValidationReport()).split("train")
    assert_close_objects(objects(back), objects(src), sizes(src), rel=0)
    want = [orjson.loads(a) for a in src.tables.annotations.column("attributes").to_pylist()]
    got = [orjson.loads(a) for a in back.tables.annotations.column("attributes").to_pylist()]
    assert got == [{k: v for k, v in w.items() if not (k == "rotation" and v == 0)} for w in want]
    rle_src = [r for r in src.tables.annotations.column("rle").to_pylist() if r]
    rle_back = [r for r in back.tables.annotations.column("rle").to_pylist() if r]
    from dsgen_core.formats.masks import decode_coco_rle

    assert len(rle_src) == len(rle_back) and all(
        (decode_coco_rle(a) == decode_coco_rle(b)).all() for a, b in zip(rle_src, rle_back, strict=True))
    COCO.write([back], tmp_path / "coco", WriteOptions(allow_lossy=True))
    from pycocotools.coco import COCO as PyCoco

    gt = PyCoco(str(tmp_path / "coco/annotations/instances_train.json"))
    assert len(gt.getAnnIds()) == src.tables.annotations.num_rows
    assert [c["name"] for c in gt.loadCats(gt.getCatIds())] == src.tables.categories.column("name").to_pylist()


def test_datumaro_imports_our_cvat_xml(tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    first = CVAT.read(_cvat(tmp_path / "cvat"), ValidationReport()).split("default")
    CVAT.write([first], tmp_path / "out", WriteOptions())
    d = dm.Dataset.import_from(str(tmp_path / "out"), "cvat")
    items = {item.id: item for item in d}
    assert set(items) == {"a/frame_0", "a/frame_1"}
    kinds = sorted(a.type.name for a in items["a/frame_0"].annotations)
    assert kinds == ["label", "mask", "points", "polygon", "polyline", "rotated_bbox"], kinds
    box = next(a for a in items["a/frame_0"].annotations if a.type.name == "rotated_bbox")
    assert box.attributes["color"] == "blue" and box.attributes["parked"] is True
    assert box.attributes["occluded"] is True
