"""Every validation case of an import, each with its asserted message; errors leave nothing behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import ann_rec, coco_doc, image_rec, jpeg, simple_export, write_export

from dsgen_core.api import ImportRequest
from dsgen_core.sample_data import write_jpeg_with_exif_orientation, write_truncated_jpeg


def run_import(api, admin, path: Path, **kw):
    started = api.start_import(admin, ImportRequest(path=str(path), group=kw.pop("group", "g"), **kw))
    job = api.run_job_here(admin, started.job_id)
    return job, api.get_version(admin, started.version_id)


def assert_left_nothing(api, version) -> None:
    assert version.status == "ERROR"
    home = api.app.settings
    assert not (home.lake_root / f"g{version.group_id}" / f"v{version.id}").exists()
    blobs = home.storage_root / "blobs"
    assert not blobs.exists() or not any(p.is_file() for p in blobs.rglob("*"))
    assert not any(home.tmp_root.iterdir())


def finding(version, code):
    f = version.validation_report.get(code)
    assert f is not None, f"expected {code}, got {version.validation_report.codes()}"
    return f


def test_unreadable_json(api, admin, tmp_path):
    root = write_export(tmp_path / "x", '{"images": [ {"id": 1, ', {"a.jpg": (64, 48)})
    job, v = run_import(api, admin, root)
    assert job.status == "FAILED"
    f = finding(v, "json_unreadable")
    assert f.severity == "error"
    assert "instances_default.json" in f.message and "byte" in f.message
    assert_left_nothing(api, v)


def test_missing_top_level_key(api, admin, tmp_path):
    doc = coco_doc([image_rec(1, "a.jpg")], [])
    del doc["annotations"]
    job, v = run_import(api, admin, write_export(tmp_path / "x", doc, {"a.jpg": (64, 48)}))
    assert job.status == "FAILED"
    assert "annotations" in finding(v, "missing_key").message + " ".join(finding(v, "missing_key").examples)
    assert_left_nothing(api, v)


def test_missing_record_key(api, admin, tmp_path):
    bad = ann_rec(7, 1)
    del bad["image_id"]
    doc = coco_doc([image_rec(1, "a.jpg")], [bad])
    job, v = run_import(api, admin, write_export(tmp_path / "x", doc, {"a.jpg": (64, 48)}))
    f = finding(v, "missing_key")
    assert "image_id" in " ".join(f.examples) + f.message
    assert_left_nothing(api, v)


def test_duplicate_ids(api, admin, tmp_path):
    doc = coco_doc(
        [image_rec(1, "a.jpg"), image_rec(1, "b.jpg")],
        [ann_rec(5, 1), ann_rec(5, 1)],
    )
    job, v = run_import(api, admin, write_export(tmp_path / "x", doc, {"a.jpg": (64, 48), "b.jpg": (64, 48)}))
    assert job.status == "FAILED"
    assert finding(v, "duplicate_image_id").examples == ["images: id 1 appears 2 times"]
    assert finding(v, "duplicate_annotation_id").examples == ["annotations: id 5 appears 2 times"]
    assert_left_nothing(api, v)


def test_dangling_references(api, admin, tmp_path):
    doc = coco_doc([image_rec(1, "a.jpg")], [ann_rec(1, 99), ann_rec(2, 1, cat=42)])
    job, v = run_import(api, admin, write_export(tmp_path / "x", doc, {"a.jpg": (64, 48)}))
    assert finding(v, "unknown_image_ref").examples == ["annotation 1: image_id 99 not found"]
    assert finding(v, "unknown_category_ref").examples == ["annotation 2: category_id 42 not found"]
    assert_left_nothing(api, v)


def test_box_geometry_warnings_keep_the_import(api, admin, tmp_path):
    doc = coco_doc(
        [image_rec(1, "a.jpg", 64, 48)],
        [
            ann_rec(1, 1, bbox=(-3.0, 2.0, 10.0, 8.0)),  # negative origin
            ann_rec(2, 1, bbox=(50.0, 40.0, 30.0, 20.0)),  # out of the 64x48 image
            ann_rec(3, 1, bbox=(5.0, 5.0, 0.0, 8.0)),  # zero width
            ann_rec(4, 1, bbox=(1.0, 1.0, -4.0, 3.0)),  # negative width
        ],
    )
    # NaN is not JSON, but Python's json writes it and some tools do too.
    text = json.dumps(doc).replace('"bbox": [1.0, 2.0, 10.0, 8.0]', '"bbox": [NaN, 2.0, 10.0, 8.0]')
    job, v = run_import(api, admin, write_export(tmp_path / "x", text, {"a.jpg": (64, 48)}))
    assert job.status == "SUCCEEDED", v.validation_report.render_text()
    assert v.status == "READY"
    assert "annotation 1" in " ".join(finding(v, "bbox_negative").examples)
    out = finding(v, "bbox_out_of_image")
    assert out.severity == "warning"
    assert any("annotation 2 on image 1 (64x48)" in e for e in out.examples)
    assert "annotation 3" in " ".join(finding(v, "zero_area").examples)
    assert finding(v, "bbox_negative").count == 2  # ids 1 and 4


def test_missing_unlisted_corrupt_images(api, admin, tmp_path):
    doc = coco_doc(
        [image_rec(1, "a.jpg"), image_rec(2, "sub/missing.jpg"), image_rec(3, "broken.jpg")],
        [ann_rec(1, 1)],
    )
    root = write_export(tmp_path / "x", doc, {"a.jpg": (64, 48), "extra/not_listed.jpg": (64, 48)})
    write_truncated_jpeg(root / "images" / "broken.jpg")
    job, v = run_import(api, admin, root)
    assert job.status == "FAILED"
    assert "image 2: sub/missing.jpg" in finding(v, "image_missing").examples[0]
    assert finding(v, "image_unlisted").examples == ["extra/not_listed.jpg"]
    assert "broken.jpg" in finding(v, "image_corrupt").examples[0]
    assert_left_nothing(api, v)


def test_size_mismatch_and_exif_rotation_are_warnings(api, admin, tmp_path):
    doc = coco_doc([image_rec(1, "a.jpg", 64, 48), image_rec(2, "rot.jpg", 40, 30)], [ann_rec(1, 1)])
    root = write_export(tmp_path / "x", doc, {})
    jpeg(root / "images" / "a.jpg", 80, 48)
    write_jpeg_with_exif_orientation(root / "images" / "rot.jpg", 40, 30, 3)
    job, v = run_import(api, admin, root)
    assert job.status == "SUCCEEDED"
    assert finding(v, "size_mismatch").examples == ["image 1: a.jpg: JSON says 64x48, file is 80x48"]
    assert "EXIF orientation 3" in finding(v, "exif_rotation").examples[0]


def test_file_name_escaping_the_folder_is_refused(api, admin, tmp_path):
    secret = tmp_path / "secret.jpg"
    jpeg(secret, 10, 10)
    doc = coco_doc([image_rec(1, "../../secret.jpg")], [])
    job, v = run_import(api, admin, write_export(tmp_path / "x", doc, {}), in_place=True)
    assert job.status == "FAILED"
    assert "../../secret.jpg" in finding(v, "bad_file_name").examples[0]


def test_check_path_writes_nothing(api, admin, tmp_path):
    root = simple_export(tmp_path / "ok", n=2)
    report = api.check_import_path(admin, ImportRequest(path=str(root), group="g"))
    assert not report.has_errors
    assert report.stats["images"] == 2 and report.stats["annotations"] == 4
    assert api.list_groups(admin) == []
    bad = write_export(tmp_path / "bad", coco_doc([image_rec(1, "a.jpg")], [ann_rec(1, 3)]), {"a.jpg": (64, 48)})
    report = api.check_import_path(admin, ImportRequest(path=str(bad), group="g"))
    assert report.get("unknown_image_ref") is not None
    assert api.list_groups(admin) == []


@pytest.mark.parametrize("field,value,code", [("group", "../etc", "group name"), ("split", "a b", "split")])
def test_bad_request_fields(api, admin, tmp_path, field, value, code):
    from dsgen_core.errors import InvalidRequest

    root = simple_export(tmp_path / "ok", n=1)
    kw = {"path": str(root), "group": "g", field: value}
    with pytest.raises(InvalidRequest, match=code):
        api.start_import(admin, ImportRequest(**kw))


def test_file_names_naming_one_file_are_duplicates(api, admin, tmp_path):
    """'./a.jpg' and 'a.jpg', 'sub\\b.jpg' and 'sub/b.jpg' would become two rows backed by one file."""
    doc = coco_doc([image_rec(1, "./a.jpg"), image_rec(2, "a.jpg"), image_rec(3, "sub\\b.jpg"),
                    image_rec(4, "sub/b.jpg"), image_rec(5, "c.jpg")], [ann_rec(1, 1)])
    root = write_export(tmp_path / "x", doc, {"a.jpg": (64, 48), "sub/b.jpg": (64, 48), "c.jpg": (64, 48)})
    report = api.check_import_path(admin, ImportRequest(path=str(root), group="g"))
    f = report.get("duplicate_file_name")
    assert f is not None and f.severity == "error" and f.count == 2
    assert f.examples == ['images: a.jpg is named by ids 1, 2 (as "./a.jpg", "a.jpg")',
                          'images: sub/b.jpg is named by ids 3, 4 (as "sub/b.jpg", "sub\\\\b.jpg")']


def test_unicode_spellings_of_one_name_are_duplicates(tmp_path):
    """macOS writes NFD, other tools NFC: the same name twice."""
    from dsgen_core.formats.coco_reader import read_coco
    from dsgen_core.importing.checks import check_tables
    from dsgen_core.validation import ValidationReport

    nfc, nfd = "caf\u00e9.jpg", "cafe\u0301.jpg"
    path = tmp_path / "a.json"
    path.write_text(json.dumps(coco_doc([image_rec(1, nfc), image_rec(2, nfd)], [])))
    report = ValidationReport()
    check_tables(read_coco(path, report), report)
    assert report.get("duplicate_file_name").examples[0].startswith(f"images: {nfc} is named by ids 1, 2")


def segmentation_doc() -> dict:
    anns = [
        ann_rec(1, 1, segmentation={"counts": [3072], "size": [48, 64]}, iscrowd=1),  # fine
        ann_rec(2, 1, segmentation={"counts": [100], "size": [10, 10]}, iscrowd=1),  # not the image's size
        ann_rec(3, 1, segmentation=[[1, 1, 5, 1, 5]]),  # odd: 5 coordinates
        ann_rec(4, 1, segmentation=[[1, 1, 5, 1]]),  # 2 points
        ann_rec(5, 1, segmentation=[[1, 1, 200, 1, 200, 40]]),  # far right of the 64-wide frame
        ann_rec(6, 1, segmentation=[[0, 0, 64.5, 0, 64.5, 48.4]]),  # a rounding overhang: fine
        ann_rec(7, 1, segmentation={"counts": "PPYo1`0", "size": [64, 48]}, iscrowd=1),  # width and height swapped
    ]
    cats = [{"id": 1, "name": "car", "supercategory": ""}, {"id": 2, "name": "person", "supercategory": ""},
            {"id": 3, "name": "car", "supercategory": "vehicle"}]
    return coco_doc([image_rec(1, "a.jpg", 64, 48)], anns, cats)


def test_segmentation_and_category_findings(api, admin, tmp_path):
    root = write_export(tmp_path / "x", segmentation_doc(), {"a.jpg": (64, 48)})
    job, v = run_import(api, admin, root)
    assert job.status == "FAILED"
    got = {f.code: (f.severity, f.examples) for f in v.validation_report.findings}
    assert got["rle_size_mismatch"] == ("error", ["annotation 2 on image 1 (64x48): RLE size [10,10]",
                                                  "annotation 7 on image 1 (64x48): RLE size [64,48]"])
    assert got["polygon_odd_coordinates"] == ("error", ["annotation 3: 1 polygon(s) of an odd number of "
                                                        "coordinates (the first has 5)"])
    assert got["polygon_too_few_points"] == ("warning", ["annotation 3: 1 polygon(s) of fewer than 3 points (the "
                                                         "first has 2)", "annotation 4: 1 polygon(s) of fewer than "
                                                         "3 points (the first has 2)"])
    assert got["polygon_out_of_image"] == ("warning", ["annotation 5 on image 1 (64x48): points span x 1.0…200.0, "
                                                       "y 1.0…40.0"])
    assert got["duplicate_category_name"] == ("error", ['categories: name "car" used by ids 1, 3'])
    assert_left_nothing(api, v)


def test_segment_warnings_alone_keep_the_import(api, admin, tmp_path):
    doc = segmentation_doc()
    doc["annotations"] = [a for a in doc["annotations"] if a["id"] in (1, 4, 5, 6)]
    doc["categories"] = doc["categories"][:2]
    job, v = run_import(api, admin, write_export(tmp_path / "x", doc, {"a.jpg": (64, 48)}))
    assert job.status == "SUCCEEDED" and v.status == "READY"
    assert {f.code for f in v.validation_report.warnings} >= {"polygon_too_few_points", "polygon_out_of_image"}
    assert not v.validation_report.errors


def test_numbers_written_as_strings_fail_the_import(api, admin, tmp_path):
    doc = coco_doc([image_rec(1, "a.jpg")], [ann_rec(1, 1)])
    doc["annotations"][0]["bbox"] = ["1", "2", "10", "8"]
    job, v = run_import(api, admin, write_export(tmp_path / "x", doc, {"a.jpg": (64, 48)}))
    assert job.status == "FAILED"
    assert finding(v, "bad_type").examples == ["annotations[0] (id=1): 'bbox' must be a list of 4 numbers, "
                                               'got ["1","2","10","8"]']
    assert_left_nothing(api, v)
