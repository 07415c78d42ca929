"""The CVAT round trip through our client against the fake CVAT over real HTTP, for every API variant."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from cvat_fake import FakeCvat
from cvat_fake.fixtures import client_for, fake_cvat, load_doc, make_fake, small_export  # noqa: F401
from pycocotools import mask as mask_utils

from dsgen_core.cvat import (
    AttributeSpec,
    Credentials,
    CvatUnsupportedVersion,
    LabelSpec,
    UploadFile,
    flat_names,
    labels_from_coco,
)

# One release per API variant (docs/cvat.md, "Versions"): before/after 2.32 (legacy GET export gone), 2.38 (PUT import
# → POST), 2.48 (personal access tokens), 2.7x (rq ids like "action=create&target=task&target_id=2").
VERSIONS = ["2.16.0", "2.23.1", "2.31.2", "2.32.0", "2.37.0", "2.38.0", "2.48.1", "2.72.0"]


def _precise(doc: dict[str, Any]) -> dict[str, Any]:
    """The sample export plus annotations at full float precision and a `custom` attribute on every car."""
    doc = json.loads(json.dumps(doc))
    img = doc["images"][0]["id"]
    nxt = max(a["id"] for a in doc["annotations"]) + 1
    doc["annotations"] += [
        {"id": nxt, "image_id": img, "category_id": 1, "segmentation": [], "area": 0.0,
         "bbox": [10.123456789012345, 3.3333333333333335, 20.71828182845905, 7.000000000000001], "iscrowd": 0,
         "attributes": {"occluded": True, "rotation": 12.5, "pose": "sitting"}},
        {"id": nxt + 1, "image_id": img, "category_id": 2,
         "segmentation": [[1.0000000001, 2.5, 30.123456789, 2.75, 15.5, 20.987654321]], "area": 0.0,
         "bbox": [1.0000000001, 2.5, 29.1234567889, 18.487654321], "iscrowd": 0,
         "attributes": {"occluded": False, "rotation": 0.0, "color": "red"}},
    ]
    for a in doc["annotations"]:
        if a["category_id"] == 2:
            a["attributes"]["parked"] = a["id"] % 2 == 0
    return doc


def _frames(export: Path, doc: dict[str, Any]) -> tuple[list[UploadFile], dict[str, Any]]:
    """Flat frame names for the nested sample files, and the COCO rewritten to those names."""
    names = flat_names([im["file_name"] for im in doc["images"]])
    files = [UploadFile(n, export / "images" / im["file_name"]) for n, im in zip(names, doc["images"], strict=True)]
    doc = dict(doc, images=[dict(im, file_name=n) for im, n in zip(doc["images"], names, strict=True)])
    return files, doc


def _comparable(doc: dict[str, Any]) -> dict[str, list[tuple]]:
    """Per image file name: the annotations as (label, bbox, segmentation, iscrowd, attributes), order-free."""
    cat = {c["id"]: c["name"] for c in doc["categories"]}
    img = {i["id"]: i["file_name"] for i in doc["images"]}
    out: dict[str, list[tuple]] = {name: [] for name in img.values()}
    for a in doc["annotations"]:
        seg = a["segmentation"]
        seg_key = json.dumps(seg, sort_keys=True)
        out[img[a["image_id"]]].append((cat[a["category_id"]], seg_key, a["iscrowd"],
                                        json.dumps(a["attributes"], sort_keys=True), a["bbox"]))
    for anns in out.values():
        anns.sort(key=lambda t: (t[0], t[1], t[3], t[4]))
    return out


ROUNDING = 0.005 + 1e-9  # CVAT rounds shape points on import and bboxes on export to 2 decimals


def _near(got: list[float], want: list[float]) -> bool:
    return len(got) == len(want) and all(abs(g - w) <= ROUNDING for g, w in zip(got, want, strict=True))


def _corners(b: list[float]) -> list[float]:
    return [b[0], b[1], b[0] + b[2], b[1] + b[3]]


def assert_same_annotations(exported: dict[str, Any], uploaded: dict[str, Any]) -> None:
    """Equal labels, kinds and attributes; coordinates within CVAT's 2-decimal rounding (polygon points and box
    corners: CVAT stores a box as corners and exports w = x2 - x1), masks exactly."""
    got, want = _comparable(exported), _comparable(uploaded)
    assert got.keys() == want.keys()
    for name in want:
        assert len(got[name]) == len(want[name]), name
        for g, w in _pairs(got[name], want[name]):
            assert (g[0], g[2], g[3]) == (w[0], w[2], w[3]), (name, g, w)
            seg_g, seg_w = json.loads(g[1]), json.loads(w[1])
            if isinstance(seg_w, dict):
                assert seg_g == seg_w or mask_utils.decode(_rle(seg_g)).tolist() == mask_utils.decode(
                    _rle(seg_w)).tolist(), name
            else:
                assert len(seg_g) == len(seg_w) and all(_near(a, b) for a, b in zip(seg_g, seg_w, strict=True)), (
                    name, seg_g, seg_w)
            assert _near(_corners(g[4]), _corners(w[4])), (name, g[4], w[4])
            assert math.isclose(g[4][2], w[4][2], abs_tol=2 * ROUNDING), (name, g[4], w[4])


def _pairs(got: list[tuple], want: list[tuple]) -> list[tuple[tuple, tuple]]:
    """Each wanted annotation with the nearest exported one of the same label and attributes."""
    left, out = list(got), []
    for w in want:
        same = [g for g in left if (g[0], g[3]) == (w[0], w[3])] or left
        g = min(same, key=lambda g: max(abs(a - b) for a, b in zip(_corners(g[4]), _corners(w[4]), strict=True)))
        left.remove(g)
        out.append((g, w))
    return out


def _rle(seg: dict[str, Any]) -> dict[str, Any]:
    h, w = seg["size"]
    return mask_utils.frPyObjects(seg, h, w) if isinstance(seg["counts"], list) else seg


@pytest.mark.parametrize("version", VERSIONS)
def test_full_cycle(make_fake, small_export: Path, version: str) -> None:  # noqa: F811
    fake: FakeCvat = make_fake(version)
    doc = _precise(load_doc(small_export))
    files, doc = _frames(small_export, doc)
    bound = 3 * max(f.size for f in files)  # several multipart requests, never above the bound
    with client_for(fake, max_request_bytes=bound) as client:
        assert str(client.version) == version
        labels = labels_from_coco(doc)
        project = client.ensure_project("relabel", labels)
        task = client.create_task("relabel-0001", project_id=project.id, segment_size=4)
        report = client.upload_images(task.id, files, image_quality=95)
        assert client.get_task(task.id).size == len(files)
        assert len(report.request_sizes) > 1 and max(report.request_sizes) <= bound
        client.upload_annotations(task.id, json.dumps(doc).encode())
        exported = client.export_coco(task.id, fake.root / "export.zip")

    # the server got the bytes, in our frame order, with our flat names
    got = fake.uploaded_files(task.id)
    assert list(got) == [f.name for f in files]
    assert all(got[f.name] == f.path.read_bytes() for f in files)
    data_posts = fake.requests("POST", r"/data/?$")
    assert data_posts and max(r.body_bytes for r in data_posts) <= bound

    assert_same_annotations(exported, doc)
    kinds = {("rle" if a["iscrowd"] else "poly" if a["segmentation"] else "box") for a in exported["annotations"]}
    assert kinds == {"rle", "poly", "box"}
    assert any(a["attributes"].get("parked") is True for a in exported["annotations"])
    assert any(a["attributes"]["rotation"] == 12.5 for a in exported["annotations"])
    # CVAT labels have no supercategory: the export says "" and the pull-back takes it from our categories
    assert {c["name"] for c in exported["categories"]} == {c["name"] for c in doc["categories"]}
    assert {c["supercategory"] for c in exported["categories"]} == {""}
    assert fake.task(task.id).image_quality == 95


@pytest.mark.parametrize("version", ["2.23.1", "2.72.0"])
def test_tus_for_annotations_and_oversized_images(make_fake, small_export: Path, version: str) -> None:  # noqa: F811
    fake: FakeCvat = make_fake(version)
    files, doc = _frames(small_export, load_doc(small_export))
    big = UploadFile("huge.jpg", data=files[0].path.read_bytes() * 3)  # bigger than the request bound
    bound = files[0].size * 2
    with client_for(fake, max_request_bytes=bound, tus_chunk_bytes=4096) as client:
        project = client.ensure_project("tus", labels_from_coco(doc))
        task = client.create_task("tus", project_id=project.id, segment_size=10)
        report = client.upload_images(task.id, [*files, big], image_quality=70)
        assert report.tus_files == 1
        client.upload_annotations(task.id, json.dumps(doc).encode(), method="tus")
        exported = client.export_coco(task.id, fake.root / "e.zip")
    assert list(fake.uploaded_files(task.id))[-1] == "huge.jpg"
    assert fake.uploaded_files(task.id)["huge.jpg"] == big.data
    patches = fake.requests("PATCH")
    assert patches and all(r.body_bytes <= 4096 for r in patches)
    assert all(r.path.endswith("/") for r in fake.requests("POST", "/annotations") if "Tus-Resumable" in r.headers)
    del doc["images"]  # images of the export include huge.jpg (no annotations there)
    exported["images"] = [im for im in exported["images"] if im["file_name"] != "huge.jpg"]
    assert_same_annotations(exported, dict(doc, images=[dict(im, file_name=f.name) for im, f in
                                                        zip(load_doc(small_export)["images"], files, strict=True)]))


def test_server_side_relabeling_shows_in_export(fake_cvat: FakeCvat, small_export: Path) -> None:  # noqa: F811
    files, doc = _frames(small_export, _precise(load_doc(small_export)))
    with client_for(fake_cvat) as client:
        project = client.ensure_project("edits", labels_from_coco(doc))
        task = client.create_task("edits", project_id=project.id, segment_size=10)
        client.upload_images(task.id, files, image_quality=80)
        client.upload_annotations(task.id, json.dumps(doc).encode())
        shapes = fake_cvat.shapes(task.id)
        box = next(s for s in shapes if s.type == "rectangle")
        car = next(s for s in shapes if fake_cvat.labels(task.id)[1].id == s.label_id)
        fake_cvat.move_shape(task.id, box.id, 2.0, -1.0)
        fake_cvat.delete_shape(task.id, shapes[-1].id)
        new_id = fake_cvat.add_box(task.id, files[1].name, "dog", (1.5, 2.5, 10.0, 5.0), occluded=True)
        fake_cvat.set_attribute(task.id, car.id, "color", "white")
        fake_cvat.rename_label(task.id, "bicycle", "bike")
        exported = client.export_coco(task.id, fake_cvat.root / "e.zip")
    assert len(exported["annotations"]) == len(doc["annotations"])  # one deleted, one added
    names = {c["id"]: c["name"] for c in exported["categories"]}
    assert "bike" in names.values() and "bicycle" not in names.values()
    moved = [a for a in exported["annotations"] if a["bbox"][0] == pytest.approx(box.points[0] + 2.0)]
    assert moved
    assert any(a["attributes"].get("color") == "white" for a in exported["annotations"])
    added = [a for a in exported["annotations"] if a["bbox"] == [1.5, 2.5, 10.0, 5.0]]
    assert added and added[0]["attributes"]["occluded"] is True and names[added[0]["category_id"]] == "dog"
    assert new_id > 0


def test_server_files_are_referenced_not_sent(make_fake, tmp_path: Path, small_export: Path) -> None:  # noqa: F811
    share = small_export / "images"
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    (bucket / "a.jpg").write_bytes(next(share.rglob("*.jpg")).read_bytes())
    fake = make_fake("2.72.0", share_root=share, cloud_storages={7: bucket})
    rel = sorted(p.relative_to(share).as_posix() for p in share.rglob("*.jpg"))
    with client_for(fake) as client:
        labels = [LabelSpec("car", "rectangle", (AttributeSpec("color", "select", ("red", "blue")),))]
        t1 = client.create_task("share", labels=labels, segment_size=100)
        client.attach_server_files(t1.id, rel, image_quality=70)
        t2 = client.create_task("cloud", labels=labels, segment_size=100)
        client.attach_server_files(t2.id, ["a.jpg"], image_quality=70, cloud_storage_id=7)
        assert client.get_task(t1.id).size == len(rel) and client.get_task(t2.id).size == 1
    assert [f["frames"] for f in fake.tasks()] == [rel, ["a.jpg"]]
    assert all(r.body_bytes < 10_000 for r in fake.requests("POST", "/data"))


@pytest.mark.parametrize("version", ["2.23.1", "2.48.0"])
def test_every_auth_method(make_fake, version: str) -> None:  # noqa: F811
    fake = make_fake(version)
    for creds in (Credentials.login(fake.username, fake.password), Credentials.basic(fake.username, fake.password),
                  Credentials.token(fake.login_token())):
        with client_for(fake, creds) as client:
            assert client.create_task("t", labels=[LabelSpec("a")], segment_size=5).id > 0
    pat = Credentials.access_token(fake.add_access_token())
    if fake.at_least(2, 48):
        with client_for(fake, pat) as client:
            assert client.list_tasks(name="t")
    else:
        with pytest.raises(CvatUnsupportedVersion, match="2.48"):
            client_for(fake, pat)
    # no request ever carried a cookie back (with one, CVAT's CSRF check refuses POSTs)
    assert all("cookie" not in {k.lower() for k in r.headers} for r in fake.log)


def test_lists_are_paginated_and_filtered(fake_cvat: FakeCvat) -> None:  # noqa: F811
    with client_for(fake_cvat) as client:
        project = client.create_project("many", [LabelSpec("a")])
        ids = [client.create_task(f"task-{i:03d}", project_id=project.id, segment_size=5).id for i in range(120)]
        client.create_task("other", labels=[LabelSpec("a")], segment_size=5)
        assert [t.id for t in client.list_tasks(project_id=project.id)] == ids
        assert [t.id for t in client.list_tasks(name="task-007")] == [ids[7]]
        assert client.get_task(ids[0]).url.endswith(f"/tasks/{ids[0]}")
        assert client.delete_task(ids[0]) and not client.delete_task(ids[0])


def _tiny_jpeg(i: int, pad: int = 0) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (16, 12), (i * 7 % 255, 40, 90)).save(out, "JPEG", quality=80)
    return out.getvalue() + b"\0" * pad  # JPEG readers stop at EOI: padding only makes files bigger


def test_more_than_one_batch_each_with_image_quality(fake_cvat: FakeCvat) -> None:  # noqa: F811
    """Over 100 images (the default per-request bound): several Upload-Multiple batches, each checked by
    CVAT's data serializer, so each carries image_quality."""
    files = [UploadFile(f"f{i:03d}.jpg", data=_tiny_jpeg(i)) for i in range(230)]
    with client_for(fake_cvat) as client:
        task = client.create_task("many", labels=[LabelSpec("car")], segment_size=100)
        report = client.upload_images(task.id, files, image_quality=77)
        assert client.get_task(task.id).size == 230
    batches = [r for r in fake_cvat.requests("POST", r"/data/$") if "Upload-Multiple" in r.headers]
    assert sorted(r.files for r in batches) == [30, 100, 100] and {r.status for r in batches} == {200}
    assert len(report.request_sizes) == 3
    assert fake_cvat.task(task.id).image_quality == 77 and list(fake_cvat.uploaded_files(task.id)) == [
        f.name for f in files]


def test_batch_bound_counts_the_form_fields(make_fake) -> None:  # noqa: F811
    """Files sized so that three fill the bound exactly without the batch's form fields: with them, a batch
    of three would be over a proxy's limit (413), so batches of two go."""
    from dsgen_core.cvat.multipart import MultipartBody

    files = [UploadFile(f"g{i}.jpg", data=_tiny_jpeg(i, pad=3000 - len(_tiny_jpeg(i)))) for i in range(7)]
    bound = MultipartBody([], [(f"client_files[{k}]", f) for k, f in enumerate(files[:3])]).size
    fake = make_fake(max_body_bytes=bound)
    with client_for(fake, max_request_bytes=bound) as client:
        task = client.create_task("bound", labels=[LabelSpec("car")], segment_size=10)
        report = client.upload_images(task.id, files, image_quality=70)
        assert client.get_task(task.id).size == 7
    batches = [r for r in fake.requests("POST", r"/data/$") if "Upload-Multiple" in r.headers]
    assert {r.status for r in batches} == {200} and max(r.body_bytes for r in batches) <= bound
    assert sorted(r.files for r in batches) == [1, 2, 2, 2] and max(report.request_sizes) <= bound
