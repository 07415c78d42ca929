"""COCO reader/writer: round trips, column values, error findings, and a pycocotools cross-check."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest

from dsgen_core.formats import coco_reader
from dsgen_core.formats.coco_reader import read_coco
from dsgen_core.formats.coco_writer import coco_dict, write_coco
from dsgen_core.lake.schema import ANNOTATIONS_SCHEMA, CATEGORIES_SCHEMA, IMAGES_SCHEMA
from dsgen_core.lake.tables import DatasetTables
from dsgen_core.validation import ValidationReport

TRICKY = 'a "quoted" \\ back\\slash, {braces} [brackets]: colon \\"'


def cvat_doc() -> dict[str, Any]:
    """A CVAT-style export: attributes, polygons, RLE crowds, categories; only known keys."""
    return {
        "licenses": [{"name": "", "id": 0, "url": ""}],
        "info": {
            "contributor": "",
            "date_created": "",
            "description": "",
            "url": "",
            "version": "",
            "year": "",
        },
        "categories": [
            {"id": 1, "name": "car", "supercategory": ""},
            {"id": 2, "name": "person", "supercategory": "human"},
        ],
        "images": [
            {
                "id": 1,
                "width": 640,
                "height": 480,
                "file_name": "frame_000001.jpg",
                "license": 0,
                "flickr_url": "",
                "coco_url": "",
                "date_captured": 0,
            },
            {
                "id": 2,
                "width": 640,
                "height": 480,
                "file_name": "sub/dir/frame_000002.png",
                "license": 0,
                "flickr_url": "",
                "coco_url": "",
                "date_captured": 0,
            },
            {
                "id": 3,
                "width": 320,
                "height": 240,
                "file_name": "no_annotations.jpg",
                "license": 0,
                "flickr_url": "",
                "coco_url": "",
                "date_captured": 0,
            },
        ],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "segmentation": [[10.5, 20, 30, 20, 30, 40.25, 10, 40]],
                "area": 400.0,
                "bbox": [10.0, 20.0, 20.0, 20.25],
                "iscrowd": 0,
                "attributes": {"occluded": False, "rotation": 0.0, "color": "red"},
            },
            {
                "id": 2,
                "image_id": 1,
                "category_id": 2,
                "segmentation": [],
                "area": 1200.0,
                "bbox": [100, 100, 30, 40],
                "iscrowd": 0,
                "attributes": {"occluded": True, "rotation": 12.5, "label text": TRICKY},
            },
            {
                "id": 3,
                "image_id": 2,
                "category_id": 2,
                "segmentation": {"counts": [5, 10, 85], "size": [10, 10]},
                "area": 10.0,
                "bbox": [0, 5, 1, 10],
                "iscrowd": 1,
                "attributes": {"occluded": False, "rotation": 0.0},
            },
            {
                "id": 4,
                "image_id": 2,
                "category_id": 1,
                "segmentation": {"counts": "PPYo1`0\\\\Ob0", "size": [480, 640]},
                "area": 55.5,
                "bbox": [1.5, 2.5, 3.5, 4.5],
                "iscrowd": 1,
                "attributes": {},
            },
            {
                "id": 5,
                "image_id": 2,
                "category_id": 1,
                "segmentation": [[1, 1, 5, 1, 5, 5], [7, 7, 9, 7, 9, 9, 7, 9]],
                "area": 12.0,
                "bbox": [1, 1, 8, 8],
                "iscrowd": 0,
                "attributes": {"occluded": False, "rotation": 0.0, "color": "blue", "truncated": True},
            },
        ],
    }


def rich_doc() -> dict[str, Any]:
    """Everything else: unknown keys at every level, nulls, unicode, escapes, keypoints, labels."""
    doc = cvat_doc()
    doc["dsgen_export"] = {"version": 2, "tags": ["a", "b"]}
    doc["note"] = "top-level scalar"
    doc["categories"].append(
        {
            "id": 7,
            "name": 'p\u00e9rson "quoted" \\',
            "supercategory": "human",
            "color": "#ff0000",
            "keypoints": ["nose", "left_eye"],
            "skeleton": [[1, 2]],
        }
    )
    doc["images"][0]["file_name"] = 'dir/\u00fcml\u00e4ut \u65e5\u672c "q" back\\slash\\'
    doc["images"][1]["extra_field"] = {"nested": [1, {"x": None}], "s": TRICKY}
    doc["images"][1]["coco_url"] = None
    doc["images"].append({"id": 9, "width": 10, "height": 12, "file_name": "minimal.jpg", 'we"ird/k~ey': 1})
    anns = doc["annotations"]
    anns[0]["attributes"]["note \u00e9"] = TRICKY
    anns[4].update({"track_id": 5, "meta": {"a": [1, 2], "b": None}, "score": 0.75})
    anns[1]["score"] = None
    anns.append(
        {
            "id": 6,
            "image_id": 9,
            "category_id": 7,
            "bbox": [1, 2, 3, 4],
            "area": 12,
            "keypoints": [10, 20, 2, 30, 40, 1],
            "num_keypoints": 2,
        }
    )
    anns.append({"id": 7, "image_id": 9, "category_id": 1})  # a plain label
    anns.append({"id": 2**60 + 1, "image_id": 9, "category_id": 1, "bbox": [0, 0, 1, 1]})
    return doc


def dump(path: Path, doc: dict[str, Any], indent: int | str | None = None, ascii_only: bool = False) -> Path:
    path.write_text(json.dumps(doc, indent=indent, ensure_ascii=ascii_only), encoding="utf-8")
    return path


def by_id(doc: dict[str, Any]) -> dict[str, Any]:
    out = dict(doc)
    for key in ("images", "annotations", "categories"):
        out[key] = sorted(doc[key], key=lambda r: r["id"])
    return out


def read_ok(path: Path) -> DatasetTables:
    report = ValidationReport()
    tables = read_coco(path, report)
    assert tables is not None, report.render_text()
    assert not report.findings
    return tables


def read_err(path: Path) -> ValidationReport:
    report = ValidationReport()
    assert read_coco(path, report) is None
    assert report.has_errors
    return report


@pytest.fixture(params=[None, 64 * 3], ids=["chunk-default", "chunk-192B"])
def chunked(request, monkeypatch):
    """Run with tiny scan chunks too, so every state carried between chunks is exercised."""
    if request.param:
        monkeypatch.setattr(coco_reader, "_CHUNK", request.param)
    return request.param


# --- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [cvat_doc, rich_doc])
@pytest.mark.parametrize(
    "indent,ascii_only", [(None, False), (2, False), ("\t", True)], ids=["compact", "indent2", "tabs-ascii"]
)
def test_round_trip(tmp_path, chunked, make, indent, ascii_only):
    doc = make()
    src = dump(tmp_path / "in.json", doc, indent, ascii_only)
    tables = read_ok(src)
    out = tmp_path / "out.json"
    write_coco(tables, out)
    written = json.loads(out.read_text(encoding="utf-8"))
    assert by_id(written) == by_id(json.loads(src.read_text(encoding="utf-8")))
    assert coco_dict(tables) == written


def test_tiny_chunks_every_64_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(coco_reader, "_CHUNK", 64)
    src = dump(tmp_path / "in.json", rich_doc(), indent=1)
    assert by_id(coco_dict(read_ok(src))) == by_id(json.loads(src.read_text()))


def test_writer_sorts_by_id_and_omits_absent_meta(tmp_path):
    tables = read_ok(dump(tmp_path / "in.json", rich_doc()))
    rng = np.random.default_rng(1)
    for name in ("images", "annotations", "categories"):
        t = tables.table(name)
        setattr(tables, name, t.take(pa.array(rng.permutation(t.num_rows))))
    tables.meta = {"format": "coco"}
    out = coco_dict(tables)
    assert list(out) == ["categories", "images", "annotations"]
    for key in ("images", "annotations", "categories"):
        ids = [r["id"] for r in out[key]]
        assert ids == sorted(ids)


def test_empty_annotations(tmp_path):
    doc = cvat_doc()
    doc["annotations"] = []
    tables = read_ok(dump(tmp_path / "in.json", doc))
    assert tables.annotations.num_rows == 0
    assert tables.annotations.schema == ANNOTATIONS_SCHEMA
    assert tables.images.column("num_annotations").to_pylist() == [0, 0, 0]
    assert coco_dict(tables) == doc


# --- column values -----------------------------------------------------------------------------


def test_columns(tmp_path, chunked):
    tables = read_ok(dump(tmp_path / "in.json", rich_doc(), indent=2))
    assert tables.images.schema == IMAGES_SCHEMA
    assert tables.annotations.schema == ANNOTATIONS_SCHEMA
    assert tables.categories.schema == CATEGORIES_SCHEMA

    imgs = {r["image_id"]: r for r in tables.images.to_pylist()}
    assert {i: r["num_annotations"] for i, r in imgs.items()} == {1: 2, 2: 3, 3: 0, 9: 3}
    assert imgs[1]["file_name"] == 'dir/\u00fcml\u00e4ut \u65e5\u672c "q" back\\slash\\'
    assert imgs[1]["license"] == 0 and imgs[1]["coco_url"] == ""
    assert orjson.loads(imgs[1]["extra"]) == {"date_captured": 0}  # not a string: kept as is
    assert orjson.loads(imgs[2]["extra"]) == {
        "date_captured": 0,
        "coco_url": None,
        "extra_field": {"nested": [1, {"x": None}], "s": TRICKY},
    }
    assert orjson.loads(imgs[9]["extra"]) == {'we"ird/k~ey': 1}
    assert imgs[9]["license"] is None and imgs[9]["uri"] is None and imgs[9]["sha256"] is None

    anns = {r["annotation_id"]: r for r in tables.annotations.to_pylist()}
    a1, a2, a3, a4, a5 = (anns[i] for i in range(1, 6))
    assert a1["polygons"] == [[10.5, 20, 30, 20, 30, 40.25, 10, 40]] and a1["rle"] is None
    assert (a1["bbox_x"], a1["bbox_y"], a1["bbox_w"], a1["bbox_h"]) == (10.0, 20.0, 20.0, 20.25)
    assert a1["annotation_type"] == "SEGMENTATION" and a1["iscrowd"] is False
    assert orjson.loads(a1["attributes"]) == {
        "occluded": False,
        "rotation": 0.0,
        "color": "red",
        "note \u00e9": TRICKY,
    }
    assert a2["polygons"] == [] and a2["annotation_type"] == "BBOX"
    assert orjson.loads(a2["extra"]) == {"score": None}
    assert a3["polygons"] is None and orjson.loads(a3["rle"]) == {"counts": [5, 10, 85], "size": [10, 10]}
    assert a3["iscrowd"] is True and a3["annotation_type"] == "SEGMENTATION"
    assert orjson.loads(a4["rle"]) == {"counts": "PPYo1`0\\\\Ob0", "size": [480, 640]}
    assert len(a5["polygons"]) == 2 and a5["score"] == 0.75
    assert orjson.loads(a5["extra"]) == {"track_id": 5, "meta": {"a": [1, 2], "b": None}}
    a6, a7, big = anns[6], anns[7], anns[2**60 + 1]
    assert a6["annotation_type"] == "KEYPOINTS" and a6["keypoints"] == [10, 20, 2, 30, 40, 1]
    assert a6["num_keypoints"] == 2 and a6["polygons"] is None and a6["iscrowd"] is None
    assert a7["annotation_type"] == "LABEL" and a7["bbox_x"] is None and a7["area"] is None
    assert big["image_id"] == 9  # ids beyond 2**53 stay exact
    assert all(r["is_machine"] is False and r["source"] == "coco" for r in anns.values())

    cats = {r["category_id"]: r for r in tables.categories.to_pylist()}
    assert cats[7]["name"] == 'p\u00e9rson "quoted" \\' and cats[7]["supercategory"] == "human"
    assert orjson.loads(cats[7]["keypoints"]) == ["nose", "left_eye"]
    assert orjson.loads(cats[7]["skeleton"]) == [[1, 2]]
    assert orjson.loads(cats[7]["extra"]) == {"color": "#ff0000"}
    assert cats[1]["extra"] is None

    meta = tables.meta
    assert meta["format"] == "coco" and meta["licenses"] == [{"name": "", "id": 0, "url": ""}]
    assert meta["info"]["year"] == ""
    assert meta["extra_top_level"] == {
        "dsgen_export": {"version": 2, "tags": ["a", "b"]},
        "note": "top-level scalar",
    }


def test_cvat_export_has_no_per_annotation_extra(tmp_path):
    tables = read_ok(dump(tmp_path / "in.json", cvat_doc()))
    assert tables.annotations.column("extra").null_count == tables.annotations.num_rows
    assert "info" in tables.meta and tables.meta["extra_top_level"] == {}


# --- errors ------------------------------------------------------------------------------------


def only(report: ValidationReport, code: str):
    assert report.codes() == {code}, report.render_text()
    return report.get(code)


def test_truncated_file(tmp_path):
    text = json.dumps(cvat_doc(), indent=2)
    path = tmp_path / "cut.json"
    path.write_text(text[: int(len(text) * 0.7)])
    f = only(read_err(path), "json_unreadable")
    assert "truncated" in f.message and "annotations[" in f.message and "line " in f.message


def test_truncated_inside_string(tmp_path):
    text = json.dumps(cvat_doc())
    cut = text.index("frame_000002") + 3
    (tmp_path / "cut.json").write_text(text[:cut])
    f = only(read_err(tmp_path / "cut.json"), "json_unreadable")
    opening_quote = text.rindex('"', 0, cut)
    assert "string" in f.message and f"at byte {opening_quote}" in f.message


def test_not_an_object(tmp_path):
    (tmp_path / "a.json").write_text('  [{"id": 1}]')
    f = only(read_err(tmp_path / "a.json"), "json_unreadable")
    assert "array" in f.message and "byte 2" in f.message
    (tmp_path / "b.json").write_text("")
    assert "empty" in only(read_err(tmp_path / "b.json"), "json_unreadable").message


@pytest.mark.parametrize(
    "text,needle",
    [
        ('{"images": [], "annotations": [], "categories": []} x', "after the top-level object"),
        ('{"images": [], "annotations": []], "categories": []}', "no open bracket"),
        ('{"images": [}, "annotations": [], "categories": []}', "mismatched"),
        ('{"images": [] "annotations": [], "categories": []}', "invalid JSON"),
        ('{"images": [{"id": 1}{"id": 2}], "annotations": [], "categories": []}', "missing ','"),
        ('{"images": [], "annotations": [{"id": 1, "bbox": [1,,2]}], "categories": []}', "annotations[0]"),
        ('{"images": [], "annotations": [], "categories": [{"id": 1 "name": "a"}]}', "categories[0]"),
    ],
)
def test_malformed(tmp_path, text, needle):
    (tmp_path / "m.json").write_text(text)
    f = only(read_err(tmp_path / "m.json"), "json_unreadable")
    assert needle in f.message and "at byte" in f.message


def test_missing_top_level_key(tmp_path):
    doc = cvat_doc()
    del doc["images"]
    f = only(read_err(dump(tmp_path / "in.json", doc)), "missing_key")
    assert "'images'" in f.message


def test_top_level_array_of_wrong_type(tmp_path):
    doc = cvat_doc()
    doc["categories"] = {"1": "car"}
    assert (
        "'categories' must be a list" in only(read_err(dump(tmp_path / "in.json", doc)), "bad_type").message
    )
    doc["categories"] = [1, 2]
    f = only(read_err(dump(tmp_path / "in.json", doc)), "bad_type")
    assert "list of objects" in f.message


@pytest.mark.parametrize("make", [cvat_doc, rich_doc], ids=["typed-path", "strict-path"])
def test_annotation_missing_image_id(tmp_path, make):
    doc = make()
    del doc["annotations"][1]["image_id"]
    f = only(read_err(dump(tmp_path / "in.json", doc)), "missing_key")
    assert f.count == 1 and "image_id" in f.message
    assert f.examples == ["annotations[1] (id=2): missing 'image_id'"]


def test_image_missing_fields(tmp_path):
    doc = cvat_doc()
    del doc["images"][2]["file_name"]
    del doc["images"][0]["width"]
    report = read_err(dump(tmp_path / "in.json", doc))
    f = only(report, "missing_key")
    assert len(report.findings) == 2
    assert {tuple(x.examples) for x in report.findings} == {
        ("images[2] (id=3): missing 'file_name'",),
        ("images[0] (id=1): missing 'width'",),
    }
    assert "images record(s)" in f.message


def test_bbox_with_three_numbers(tmp_path):
    doc = cvat_doc()
    doc["annotations"][3]["bbox"] = [1, 2, 3]
    doc["annotations"][4]["bbox"] = [1, 2, 3, 4, 5]
    f = only(read_err(dump(tmp_path / "in.json", doc)), "bad_type")
    assert f.count == 2 and "bbox" in f.message
    assert f.examples[0] == "annotations[3] (id=4): 'bbox' is not a list of 4 numbers"


@pytest.mark.parametrize("where", ["annotations", "images", "categories"])
def test_id_as_string(tmp_path, where):
    doc = cvat_doc()
    doc[where][1]["id"] = "12"
    f = only(read_err(dump(tmp_path / "in.json", doc)), "bad_type")
    assert f.count == 1 and "'id'" in f.message
    assert f.examples == [f"{where}[1] (id=?): 'id' must be an integer, got \"12\""]


def test_other_bad_types(tmp_path):
    doc = cvat_doc()
    doc["annotations"][0]["id"] = 1.5
    doc["annotations"][1]["iscrowd"] = 2
    report = read_err(dump(tmp_path / "in.json", doc))
    messages = " | ".join(f.message for f in report.findings)
    assert report.codes() == {"bad_type"} and "'id' is not an integer" in messages and "iscrowd" in messages
    doc = rich_doc()
    doc["annotations"][0]["bbox"] = {"x": 1}
    doc["annotations"][2]["area"] = "big"
    report = read_err(dump(tmp_path / "in.json", doc))
    assert {tuple(f.examples) for f in report.findings} == {
        ("annotations[0] (id=1): 'bbox' must be a list of 4 numbers, got {\"x\":1}",),
        ("annotations[2] (id=3): 'area' must be a number, got \"big\"",),
    }


# --- medium generated file vs pycocotools ------------------------------------------------------


def medium_doc(n_images: int = 1500, n_anns: int = 20_000, seed: int = 7) -> dict[str, Any]:
    """Random polygons (3-12 points), ~2% crowd RLE, CVAT attributes; built with numpy."""
    rng = np.random.default_rng(seed)
    npts = rng.integers(3, 13, n_anns)
    ends = np.cumsum(npts * 2)
    coords = np.round(rng.uniform(0, 600, int(ends[-1])), 2)
    image_ids = rng.integers(1, n_images + 1, n_anns)
    crowd = rng.random(n_anns) < 0.02
    anns = []
    for k in range(n_anns):
        poly = coords[ends[k] - 2 * npts[k] : ends[k]]
        xs, ys = poly[0::2], poly[1::2]
        bbox = [float(xs.min()), float(ys.min()), float(xs.max() - xs.min()), float(ys.max() - ys.min())]
        seg: Any = poly.tolist()
        seg = {"counts": rng.integers(1, 50, 20).tolist(), "size": [480, 640]} if crowd[k] else [seg]
        anns.append(
            {
                "id": k + 1,
                "image_id": int(image_ids[k]),
                "category_id": int(k % 5) + 1,
                "segmentation": seg,
                "area": round(bbox[2] * bbox[3] / 2, 3),
                "bbox": bbox,
                "iscrowd": int(crowd[k]),
                "attributes": {"occluded": bool(k % 3 == 0), "rotation": 0.0},
            }
        )
    return {
        "licenses": [],
        "info": {"description": "medium"},
        "categories": [{"id": i, "name": f"c{i}", "supercategory": ""} for i in range(1, 6)],
        "images": [
            {"id": i, "width": 640, "height": 480, "file_name": f"{i:06d}.jpg"}
            for i in range(1, n_images + 1)
        ],
        "annotations": anns,
    }


def test_medium_against_pycocotools(tmp_path):
    from pycocotools.coco import COCO

    doc = medium_doc()
    src = tmp_path / "medium.json"
    src.write_bytes(orjson.dumps(doc))
    tables = read_ok(src)
    coco = COCO(str(src))
    ds = coco.dataset
    assert tables.images.num_rows == len(ds["images"])
    assert tables.annotations.num_rows == len(ds["annotations"])
    assert tables.categories.num_rows == len(ds["categories"])
    ann = tables.annotations
    ref = sorted(ds["annotations"], key=lambda a: a["id"])
    assert ann.column("annotation_id").to_pylist() == [a["id"] for a in ref]
    np.testing.assert_array_equal(ann.column("area").to_numpy(), [a["area"] for a in ref])
    np.testing.assert_array_equal(ann.column("bbox_w").to_numpy(), [a["bbox"][2] for a in ref])
    assert ann.column("iscrowd").to_pylist() == [bool(a["iscrowd"]) for a in ref]
    polys = ann.column("polygons").to_pylist()
    assert [p is None for p in polys] == [isinstance(a["segmentation"], dict) for a in ref]
    assert polys[:200] == [
        a["segmentation"] if isinstance(a["segmentation"], list) else None for a in ref[:200]
    ]
    counts = dict(
        zip(
            tables.images.column("image_id").to_pylist(),
            tables.images.column("num_annotations").to_pylist(),
            strict=True,
        )
    )
    assert counts == {i: len(coco.imgToAnns.get(i, [])) for i in coco.imgs}
    out = tmp_path / "out.json"
    write_coco(tables, out)
    assert by_id(orjson.loads(out.read_bytes())) == by_id(copy.deepcopy(doc))
    again = COCO(str(out))
    assert len(again.anns) == len(coco.anns) and again.getCatIds() == coco.getCatIds()


def test_invalid_utf8_and_bom(tmp_path):
    path = tmp_path / "u.json"
    path.write_bytes(
        b'{"images": [{"id": 1, "file_name": "a\xff.jpg", "width": 1, "height": 1}], '
        b'"annotations": [], "categories": []}'
    )
    f = only(read_err(path), "json_unreadable")
    assert "UTF-8" in f.message and "at byte 37" in f.message
    path.write_bytes(b"\xef\xbb\xbf" + orjson.dumps(cvat_doc()))
    assert read_ok(path).images.num_rows == 3


def test_escaped_quotes_at_every_chunk_offset(tmp_path, monkeypatch):
    """Backslash runs and escaped quotes straddling each possible chunk boundary (scan only)."""
    monkeypatch.setattr(coco_reader, "_CHUNK", 64)
    name = "x" * 20 + '\\"' + "y" * 40 + "\\"
    doc = {
        "images": [{"id": 1, "file_name": name, "width": 1, "height": 1}],
        "annotations": [],
        "categories": [],
    }
    body = orjson.dumps(doc)
    path = tmp_path / "e.json"
    for pad in range(64):
        path.write_bytes(b" " * pad + body)
        record = coco_reader._split(path).records["images"][0].as_py()
        assert orjson.loads(record)["file_name"] == name


@pytest.mark.parametrize(
    "key,value,expected",
    [
        ("bbox", {"x": 1}, "'bbox' must be a list of 4 numbers, got {\"x\":1}"),
        ("segmentation", 5, "'segmentation' must be a list of lists of numbers, got 5"),
        ("area", [1], "'area' must be a number, got [1]"),
    ],
)
def test_values_the_typed_read_cannot_convert(tmp_path, key, value, expected):
    """The typed read turns these into NULL; the key count from the scan notices and the strict pass reports."""
    doc = cvat_doc()
    doc["annotations"][2][key] = value
    f = only(read_err(dump(tmp_path / "in.json", doc)), "bad_type")
    assert f.examples == [f"annotations[2] (id=3): {expected}"]


def test_cvat_export_takes_the_typed_path_only(tmp_path, monkeypatch):
    def fail(self):
        raise AssertionError("strict pass should not run for a plain CVAT export")

    monkeypatch.setattr(coco_reader._Reader, "_annotations_strict", fail)
    assert read_ok(dump(tmp_path / "in.json", cvat_doc(), indent=2)).annotations.num_rows == 5


@pytest.mark.parametrize("segmentation", [[[1, 2, None, 4]], [None]])
def test_polygon_with_non_numbers(tmp_path, segmentation):
    doc = cvat_doc()
    doc["annotations"][4]["segmentation"] = segmentation
    f = only(read_err(dump(tmp_path / "in.json", doc)), "bad_type")
    assert f.examples == ["annotations[4] (id=5): 'segmentation' polygons must hold only numbers"]


@pytest.mark.parametrize(
    "key,value,expected",
    [
        ("bbox", ["1", "2", "3", "4"], "'bbox' must be a list of 4 numbers, got [\"1\",\"2\",\"3\",\"4\"]"),
        ("bbox", [1, 2, "3", 4], "'bbox' must be a list of 4 numbers, got [1,2,\"3\",4]"),
        ("segmentation", [[1, 2, "x", 4, 5, 6]], "'segmentation' must be a list of lists of numbers, got [[1,2,\"x\",4,5,6]]"),
        ("segmentation", [[1, 1, 5, 1, 5, 5], [7, "7", 9, 7, 9, 9]],
         "'segmentation' must be a list of lists of numbers, got [[1,1,5,1,5,5],[7,\"7\",9,7,9,9]]"),
        ("segmentation", ["1, 2, 3, 4, 5, 6"], "'segmentation' must be a list of lists of numbers, got [\"1, 2, 3, 4, 5, 6\"]"),
        ("keypoints", [10, "20", 2], "'keypoints' must be a list of numbers, got [10,\"20\",2]"),
        ("segmentation", {"counts": [5, 10, 85], "size": ["10", "10"]},
         "'segmentation' must be an RLE object (counts: a string or a list of numbers, size: [height, width]), "
         "got {\"counts\":[5,10,85],\"size\":[\"10\",\"10\"]}"),
    ],
)
def test_strings_where_numbers_belong_inside_arrays_are_bad_type(tmp_path, chunked, key, value, expected):
    """The typed read would turn "12" into 12.0; the scan sees strings inside arrays and the strict pass says so."""
    doc = cvat_doc()
    doc["annotations"][1][key] = value
    for indent in (None, 2):
        f = only(read_err(dump(tmp_path / "in.json", doc, indent=indent)), "bad_type")
        assert f.examples == [f"annotations[1] (id=2): {expected}"]


def test_strings_inside_a_category_skeleton_are_bad_type(tmp_path):
    doc = rich_doc()
    doc["categories"][2]["skeleton"] = [[1, "2"]]
    f = only(read_err(dump(tmp_path / "in.json", doc)), "bad_type")
    assert f.examples == ["categories[2] (id=7): 'skeleton' must be a list of lists of numbers, got [[1,\"2\"]]"]


def test_strings_in_attribute_lists_and_escaped_quotes_stay_on_the_typed_values(tmp_path, chunked):
    """Lists of strings are fine inside attributes (and keys with escaped quotes count right): nothing is refused."""
    doc = cvat_doc()
    doc["annotations"][0]["attributes"]["tags"] = ["night", 'a "q" \\', "[x]"]
    doc["annotations"][1]["attributes"]['k"ey'] = {"nested": ["s", 1]}
    tables = read_ok(dump(tmp_path / "in.json", doc, indent=1))
    back = json.loads(tables.annotations.column("attributes")[0].as_py())
    assert back["tags"] == ["night", 'a "q" \\', "[x]"]


def test_strings_inside_arrays_are_counted_at_every_chunk_offset(tmp_path, monkeypatch):
    """The scan's count of strings inside annotation arrays, with escaped quotes and chunk edges anywhere."""
    monkeypatch.setattr(coco_reader, "_CHUNK", 64)
    plain, strings = cvat_doc(), cvat_doc()
    strings["annotations"][3]["bbox"] = ["1", "2", "3", "4"]
    strings["annotations"][0]["attributes"]["tags"] = ['x\\"', "y"]  # in attributes: counted, still fine
    path = tmp_path / "e.json"
    for pad in range(64):
        for doc, expected in ((plain, 0), (strings, 6)):
            path.write_bytes(b" " * pad + orjson.dumps(doc))
            assert coco_reader._split(path).ann_array_strings == expected, pad


def _with_duplicate(text: str, where: str, key: str, value: str) -> str:
    """The JSON text with `"key": value` added again right after the first `where` (a raw edit: dicts cannot)."""
    at = text.index(where) + len(where)
    return text[:at] + f'"{key}": {value}, ' + text[at:]


@pytest.mark.parametrize(
    "array,where,key,value,example",
    [
        ("images", '"images": [{', "file_name", '"other.jpg"', "images[0] (id=1): 'file_name' twice"),
        ("annotations", '"annotations": [{', "category_id", "2", "annotations[0] (id=1): 'category_id' twice"),
        ("annotations", '"annotations": [{', "track", "7", None),  # an unknown key once: fine
        ("categories", '"categories": [{', "name", '"bike"', "categories[0] (id=1): 'name' twice"),
    ],
)
def test_a_key_named_twice_in_a_record_is_reported(tmp_path, chunked, array, where, key, value, example):
    text = _with_duplicate(json.dumps(cvat_doc()), where, key, value)
    path = tmp_path / "in.json"
    path.write_text(text)
    if example is None:
        assert read_ok(path).annotations.num_rows == 5
        return
    first = json.loads(text)[array][0][key]  # Python's json (and so pycocotools) keeps the last value
    assert str(first) not in value
    f = only(read_err(path), "duplicate_key")
    assert f.severity == "error" and f.examples == [example]
    assert "Python's json and pycocotools take the last" in f.message


def test_a_top_level_key_named_twice_is_reported(tmp_path):
    text = json.dumps(cvat_doc())
    text = text[:-1] + ', "annotations": []}'  # a second, empty list would hide the first
    f = only(read_err(dump_text(tmp_path / "in.json", text)), "duplicate_key")
    assert "the top-level object names 'annotations' twice" in f.message and "in.json" in f.message


def dump_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("encoding,named", [("utf-16-le", "UTF-16 LE"), ("utf-16-be", "UTF-16 BE"),
                                            ("utf-32-le", "UTF-32 LE"), ("utf-32-be", "UTF-32 BE")])
@pytest.mark.parametrize("bom", [False, True])
def test_utf16_and_utf32_are_named(tmp_path, encoding, named, bom):
    """Windows tools (PowerShell's Out-File, Notepad's 'Unicode') write UTF-16, often without a byte-order mark."""
    doc = cvat_doc()
    doc["images"][0]["file_name"] = "밤/frame_000001.jpg"
    text = json.dumps(doc, ensure_ascii=False, indent=2)
    data = text.encode(encoding)
    if bom:
        data = ("\ufeff").encode(encoding) + data
    path = tmp_path / "w.json"
    path.write_bytes(data)
    f = only(read_err(path), "json_unreadable")
    how = "with a byte-order mark" if bom else "without a byte-order mark"
    assert f.message.startswith(f"the file is {named} {how}"), f.message
    assert "save it again as UTF-8" in f.message
    assert json.loads(data.decode(encoding).lstrip("\ufeff")) == doc  # a real UTF-16/32 document


def test_a_stray_nul_byte_is_not_called_utf16(tmp_path):
    path = tmp_path / "n.json"
    path.write_bytes(orjson.dumps(cvat_doc()).replace(b'"images"', b'"images"\x00', 1))
    f = only(read_err(path), "json_unreadable")
    assert "UTF-16" not in f.message


def test_nan_and_infinity_are_exported_as_null(tmp_path):
    """Strict JSON parsers (orjson, JavaScript, Go, Python with parse_constant) refuse NaN/Infinity literals."""
    doc = cvat_doc()
    doc["annotations"][0].update(bbox=["@nan", 2, 10, 8], area="@inf", score="@-inf",
                                 segmentation=[[1, 1, "@nan", 1, 5, 5]], keypoints=[1, "@inf", 2], conf="@nan")
    doc["annotations"][0]["attributes"] = {"rotation": "@nan", "note": "NaN and Infinity stay in strings"}
    text = json.dumps(doc)
    for token, literal in (('"@nan"', "NaN"), ('"@-inf"', "-Infinity"), ('"@inf"', "Infinity")):
        text = text.replace(token, literal)  # as Python's json.dumps or DuckDB write them
    src = tmp_path / "in.json"
    src.write_text(text)
    report = ValidationReport()
    tables = read_coco(src, report)
    assert tables is not None, report.render_text()
    out = tmp_path / "out.json"
    write_coco(tables, out)

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} written into the export")

    strict = json.loads(out.read_text(), parse_constant=refuse)
    assert orjson.loads(out.read_bytes()) == strict
    ann = by_id(strict)["annotations"][0]
    assert ann["bbox"] == [None, 2.0, 10.0, 8.0]
    assert ann["area"] is None and ann["score"] is None and ann["conf"] is None
    assert ann["segmentation"] == [[1.0, 1.0, None, 1.0, 5.0, 5.0]]
    assert ann["keypoints"] == [1.0, None, 2.0]
    assert ann["attributes"] == {"rotation": None, "note": "NaN and Infinity stay in strings"}
    assert by_id(strict)["annotations"][1] == by_id(json.loads(text))["annotations"][1]  # others untouched
