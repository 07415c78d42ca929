"""The import path end to end on generated CVAT exports: zip, folder, JSON + images, in place, round trip."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from helpers import simple_export, zip_folder

from dsgen_core.api import ImportRequest
from dsgen_core.sample_data import SampleSpec, generate_cvat_coco, generate_cvat_coco_zip


def do_import(api, admin, path, **kw):
    started = api.start_import(admin, ImportRequest(path=str(path), **{"group": "demo", **kw}))
    job = api.run_job_here(admin, started.job_id)
    assert job.status == "SUCCEEDED", (job.error, api.get_version(admin, started.version_id).validation_report.render_text())
    return api.get_version(admin, started.version_id)


@pytest.fixture(scope="module")
def export_zip(tmp_path_factory) -> Path:
    return generate_cvat_coco_zip(tmp_path_factory.mktemp("gen") / "export.zip", SampleSpec(num_images=24, seed=3))


def lake(api, v) -> Path:
    return api.app.settings.lake_root / f"g{v.group_id}" / f"v{v.id}"


def test_zip_import_ready_with_counts_and_lake(api, admin, export_zip, tmp_path):
    v = do_import(api, admin, export_zip, split="train")
    doc = json.loads(_zip_json(export_zip, tmp_path))
    assert (v.status, v.version, v.split) == ("READY", "1.0.0", "train")
    assert v.num_images == len(doc["images"]) == 24
    assert v.num_annotations == len(doc["annotations"])
    assert v.num_categories == len(doc["categories"])
    folder = lake(api, v)
    con = duckdb.connect()
    n_img, n_blob = con.execute(
        "SELECT count(*), count(DISTINCT uri) FROM read_parquet($p) WHERE uri LIKE 'blob://%'",
        {"p": str(folder / "images.parquet")},
    ).fetchone()
    assert n_img == n_blob == 24
    per_image = dict(con.execute("SELECT image_id, num_annotations FROM read_parquet($p)",
                                 {"p": str(folder / "images.parquet")}).fetchall())
    expected: dict[int, int] = {}
    for a in doc["annotations"]:
        expected[a["image_id"]] = expected.get(a["image_id"], 0) + 1
    assert all(per_image[i["id"]] == expected.get(i["id"], 0) for i in doc["images"])
    for uri in con.execute("SELECT uri FROM read_parquet($p)", {"p": str(folder / "images.parquet")}).fetchall():
        assert api.app.storage.exists(uri[0])
    groups = api.list_groups(admin)
    assert [g.name for g in groups] == ["demo"] and groups[0].status == "READY"


def _zip_json(zip_path: Path, tmp: Path) -> str:
    import zipfile

    with zipfile.ZipFile(zip_path) as zf:
        return zf.read("annotations/instances_default.json").decode()


def test_versions_increment_and_hash_is_deterministic(api, admin, export_zip):
    v1 = do_import(api, admin, export_zip, split="train")
    v2 = do_import(api, admin, export_zip, split="train")
    v3 = do_import(api, admin, export_zip, split="val")
    assert (v1.version, v2.version, v3.version) == ("1.0.0", "1.1.0", "1.0.0")
    assert v1.content_hash == v2.content_hash == v3.content_hash
    assert len(v1.content_hash) == 64


def test_hash_changes_when_content_changes(api, admin, tmp_path):
    a = simple_export(tmp_path / "a", n=3)
    v1 = do_import(api, admin, a, group="x")
    doc = json.loads((a / "annotations" / "instances_default.json").read_text())
    doc["annotations"][0]["bbox"][0] += 1.0
    (a / "annotations" / "instances_default.json").write_text(json.dumps(doc))
    v2 = do_import(api, admin, a, group="x")
    assert v1.content_hash != v2.content_hash


def test_folder_json_plus_images_and_nested_subfolders(api, admin, tmp_path):
    root = generate_cvat_coco(tmp_path / "exp", SampleSpec(num_images=10, seed=5, nested=True))
    names = json.loads((root / "annotations" / "instances_default.json").read_text())["images"]
    assert any("/" in i["file_name"] for i in names), "generator should nest some images"
    v_folder = do_import(api, admin, root, group="f")
    v_json = do_import(api, admin, root / "annotations" / "instances_default.json", group="j",
                       images_path=str(root / "images"))
    assert v_folder.num_images == v_json.num_images == 10
    assert v_folder.content_hash == v_json.content_hash


def test_register_in_place_copies_no_bytes(api, admin, tmp_path):
    root = simple_export(tmp_path / "nas", n=4)
    v = do_import(api, admin, root, group="nas", in_place=True)
    assert v.in_place
    blobs = api.app.settings.storage_root / "blobs"
    assert not blobs.exists() or not any(p.is_file() for p in blobs.rglob("*"))
    con = duckdb.connect()
    uris = [r[0] for r in con.execute("SELECT uri FROM read_parquet($p)",
                                      {"p": str(lake(api, v) / "images.parquet")}).fetchall()]
    assert all(u.startswith("file://") for u in uris)
    assert {Path(api.app.storage.local_path(u)).parent for u in uris} == {(root / "images").resolve()}
    # the same content imported by copy has the same hash: where bytes live is not content
    v_copy = do_import(api, admin, root, group="copy")
    assert v_copy.content_hash == v.content_hash


def test_round_trip_coco_lake_coco(api, admin, export_zip, tmp_path):
    v = do_import(api, admin, export_zip)
    out = api.export_coco(admin, v.id, tmp_path / "out.json")
    original = json.loads(_zip_json(export_zip, tmp_path))
    exported = json.loads(out.read_text())
    for key in ("images", "annotations", "categories"):
        assert sorted(exported[key], key=lambda r: r["id"]) == sorted(original[key], key=lambda r: r["id"]), key
    assert exported["info"] == original["info"] and exported["licenses"] == original["licenses"]
    assert set(exported) == set(original)
    # polygons, RLE with iscrowd and custom attributes are in the data and survived
    anns = original["annotations"]
    assert any(isinstance(a["segmentation"], dict) and a["iscrowd"] == 1 for a in anns)
    assert any(isinstance(a["segmentation"], list) and a["segmentation"] for a in anns)
    assert any(set(a["attributes"]) - {"occluded", "rotation"} for a in anns)


def test_thumbnails_job_follows_import(api, admin, export_zip):
    from dsgen_core.jobs import queue

    v = do_import(api, admin, export_zip)
    thumbs = [j for j in api.list_jobs(admin) if j.kind == "thumbnails" and j.version_id == v.id]
    assert len(thumbs) == 1 and thumbs[0].status == "QUEUED"
    assert queue.run_worker(api.app, once=True) >= 1
    job = api.get_job(admin, thumbs[0].id)
    assert job.status == "SUCCEEDED" and job.result["thumbnails"] == 24
    samples = api.sample_images(admin, v.id, limit=5)
    assert len(samples) == 5 and all(s.thumb_path and s.thumb_path.exists() for s in samples)
    from PIL import Image

    with Image.open(samples[0].thumb_path) as im:
        assert max(im.size) <= 512
    assert sum(c.instances for c in api.class_counts(admin, v.id)) == v.num_annotations


def test_zip_as_cvat_downloads_it_inside_a_top_folder(api, admin, tmp_path):
    root = simple_export(tmp_path / "wrap" / "task_17_export", n=2)
    z = zip_folder(root.parent, tmp_path / "wrapped.zip")
    v = do_import(api, admin, z, group="wrapped")
    assert v.num_images == 2
