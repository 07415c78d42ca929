"""The fake CVAT itself, driven with plain httpx: it must behave as real CVAT does (docs/cvat.md, "The fake CVAT")."""

from __future__ import annotations

import base64
import io
import json
import time
import zipfile
from urllib.parse import quote

import httpx
import pytest
from cvat_fake import FakeCvat
from cvat_fake.fixtures import fake_cvat, make_fake  # noqa: F401
from PIL import Image


def _jpeg(seed: int = 0) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (seed * 40 % 255, 10, 20)).save(out, "JPEG")
    return out.getvalue()


def _session(fake: FakeCvat) -> httpx.Client:
    """Token auth, no cookies kept (a generous timeout: the machine running the suite is shared)."""
    http = httpx.Client(base_url=fake.url, timeout=30.0)
    key = http.post("/api/auth/login", json={"username": fake.username, "password": fake.password}).json()["key"]
    http.cookies.clear()
    http.headers["Authorization"] = f"Token {key}"
    return http


def _task(http: httpx.Client) -> int:
    r = http.post("/api/tasks", json={"name": "t", "labels": [{"name": "car", "attributes": []}], "segment_size": 5})
    assert r.status_code == 201
    return r.json()["id"]


def _poll(http: httpx.Client, rq_id: str) -> list[str]:
    seen = []
    for _ in range(200):
        body = http.get(f"/api/requests/{quote(rq_id, safe='')}").json()
        seen.append(body["status"])
        if body["status"] in ("finished", "failed"):
            return seen
        time.sleep(0.005)
    raise AssertionError(seen)


def test_auth_401_and_csrf_with_cookies(fake_cvat: FakeCvat) -> None:  # noqa: F811
    http = httpx.Client(base_url=fake_cvat.url)
    assert http.get("/api/server/about").json()["version"] == "2.23.1"  # public
    assert http.get("/api/tasks").status_code == 401
    assert http.get("/api/tasks", headers={"Authorization": "Token nope"}).status_code == 401
    r = http.post("/api/auth/login", json={"username": fake_cvat.username, "password": "bad"})
    assert r.status_code == 400
    r = http.post("/api/auth/login", json={"username": fake_cvat.username, "password": fake_cvat.password})
    key = r.json()["key"]
    assert "sessionid" in http.cookies  # httpx kept the session cookie...
    auth = {"Authorization": f"Token {key}"}
    assert http.get("/api/tasks", headers=auth).status_code == 200  # ...reads work...
    r = http.post("/api/projects", json={"name": "p", "labels": []}, headers=auth)
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]  # ...writes fail, as on CVAT
    http.cookies.clear()
    assert http.post("/api/projects", json={"name": "p", "labels": []}, headers=auth).status_code == 201
    basic = base64.b64encode(f"{fake_cvat.username}:{fake_cvat.password}".encode()).decode()
    assert http.get("/api/users/self", headers={"Authorization": f"Basic {basic}"}).status_code == 200


def test_personal_access_tokens_from_2_48(make_fake) -> None:  # noqa: F811
    for version, ok in (("2.47.0", False), ("2.48.0", True)):
        fake = make_fake(version)
        pat = fake.add_access_token()
        r = httpx.get(f"{fake.url}/api/users/self", headers={"Authorization": f"Bearer {pat}"})
        assert (r.status_code == 200) is ok


def test_single_request_upload_needs_image_quality_and_client_files(fake_cvat: FakeCvat) -> None:  # noqa: F811
    http = _session(fake_cvat)
    tid = _task(http)
    files = {"client_files[0]": ("b.jpg", _jpeg(1)), "client_files[1]": ("a.jpg", _jpeg(2))}
    r = http.post(f"/api/tasks/{tid}/data", files=files, data={"sorting_method": "predefined"})
    assert r.status_code == 400 and r.json() == {"image_quality": ["This field is required."]}
    r = http.post(f"/api/tasks/{tid}/data", files={"images": ("a.jpg", _jpeg())}, data={"image_quality": "70"})
    assert r.status_code == 400 and "client_files" in r.json()["detail"]
    r = http.post(f"/api/tasks/{tid}/data", files=files, data={"image_quality": "70", "sorting_method": "predefined"})
    assert r.status_code == 202
    assert _poll(http, r.json()["rq_id"]) == ["queued", "started", "finished"]
    assert fake_cvat.tasks()[0]["frames"] == ["b.jpg", "a.jpg"]  # predefined keeps our order
    assert http.get(f"/api/tasks/{tid}/status").json()["state"] == "Finished"
    r = http.post(f"/api/tasks/{tid}/data", files=files, data={"image_quality": "70"})
    assert r.status_code == 400  # adding more data is not supported


def test_multi_request_upload_protocol(make_fake) -> None:  # noqa: F811
    fake = make_fake("2.72.0", max_files_per_request=2, max_body_bytes=50_000)
    http = _session(fake)
    tid = _task(http)
    url = f"/api/tasks/{tid}/data/"
    assert http.post(url, headers={"Upload-Start": "true"}).status_code == 202
    quality = {"image_quality": "70"}
    # every batch goes through CVAT's data serializer: without image_quality it is refused and stores nothing
    r = http.post(url, files={"client_files[0]": ("z.jpg", _jpeg(9))}, headers={"Upload-Multiple": "true"})
    assert (r.status_code, r.json()) == (400, {"image_quality": ["This field is required."]})
    for names in (["c.jpg", "a.jpg"], ["b.jpg"]):
        files = {f"client_files[{i}]": (n, _jpeg(i)) for i, n in enumerate(names)}
        assert http.post(url, data=quality, files=files, headers={"Upload-Multiple": "true"}).status_code == 200
    three = {f"client_files[{i}]": (f"x{i}.jpg", _jpeg(i)) for i in range(3)}
    assert http.post(url, data=quality, files=three, headers={"Upload-Multiple": "true"}).status_code == 400
    huge = {"client_files[0]": ("h.jpg", b"x" * 60_000)}
    assert http.post(url, data=quality, files=huge, headers={"Upload-Multiple": "true"}).status_code == 413
    # the refused requests left nothing behind: the uploaded set is still c, a, b
    bad = {"image_quality": 70, "sorting_method": "predefined", "upload_file_order": ["a.jpg"]}
    assert http.post(url, json=bad, headers={"Upload-Finish": "true"}).status_code == 400
    order = {"image_quality": 70, "sorting_method": "predefined", "upload_file_order": ["b.jpg", "c.jpg", "a.jpg"]}
    r = http.post(url, json=order, headers={"Upload-Finish": "true"})
    assert r.status_code == 202 and r.json()["rq_id"] == f"action=create&target=task&target_id={tid}"
    assert _poll(http, r.json()["rq_id"])[-1] == "finished"
    assert fake.tasks()[0]["frames"] == ["b.jpg", "c.jpg", "a.jpg"]
    recorded = fake.requests("POST", "/data/$")
    assert [r.status for r in recorded] == [202, 400, 200, 200, 400, 413, 400, 202]
    assert [r.files for r in recorded[:4]] == [0, 1, 2, 1] and recorded[0].headers.get("Upload-Start") == "true"


def _coco(name: str) -> bytes:
    return json.dumps({
        "categories": [{"id": 1, "name": "car", "supercategory": ""}],
        "images": [{"id": 1, "file_name": name, "width": 32, "height": 24}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [], "bbox": [1.5, 2, 3, 4],
                         "area": 12, "iscrowd": 0, "attributes": {"occluded": True, "rotation": 0.0}}],
    }).encode()


def _task_with_image(http: httpx.Client) -> int:
    tid = _task(http)
    r = http.post(f"/api/tasks/{tid}/data", files={"client_files[0]": ("a.jpg", _jpeg())}, data={"image_quality": 70})
    _poll(http, r.json()["rq_id"])
    return tid


@pytest.mark.parametrize("version", ["2.23.1", "2.37.0", "2.38.0", "2.72.0"])
def test_annotation_import_switches_at_2_38(make_fake, version: str) -> None:  # noqa: F811
    fake = make_fake(version)
    http = _session(fake)
    tid = _task_with_image(http)
    files = {"annotation_file": ("a.json", _coco("a.jpg"))}
    put = http.put(f"/api/tasks/{tid}/annotations", params={"format": "COCO 1.0"}, files=files)
    post = http.post(f"/api/tasks/{tid}/annotations", params={"format": "COCO 1.0"}, files=files)
    if fake.at_least(2, 38):
        assert put.status_code == 410 and post.status_code == 202
    else:
        assert put.status_code == 202 and post.status_code == 400
        assert post.json()["detail"] == "No such file were uploaded"
    rq_id = (post if fake.at_least(2, 38) else put).json()["rq_id"]
    assert _poll(http, rq_id)[-1] == "finished"
    assert fake.annotations(tid)["annotations"][0]["bbox"] == [1.5, 2.0, 3.0, 4.0]


def test_tus_needs_the_trailing_slash(fake_cvat: FakeCvat) -> None:  # noqa: F811
    http = _session(fake_cvat)
    tid = _task_with_image(http)
    data = _coco("a.jpg")
    tus = {"Tus-Resumable": "1.0.0", "Upload-Length": str(len(data)),
           "Upload-Metadata": "filename " + base64.b64encode(b"a.json").decode()}
    patch = {"Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    r = http.post(f"/api/tasks/{tid}/annotations", headers=tus)  # no trailing slash
    assert r.status_code == 201
    assert http.patch(r.headers["Location"], content=data, headers=patch).status_code == 404
    assert http.post(f"/api/tasks/{tid}/annotations/", params={"format": "COCO 1.0"},
                     headers={"Upload-Start": "true"}).status_code == 202
    r = http.post(f"/api/tasks/{tid}/annotations/", headers=tus)
    loc = r.headers["Location"]
    assert loc.startswith(fake_cvat.url + f"/api/tasks/{tid}/annotations/")
    assert http.patch(loc, content=data[:10], headers=patch).status_code == 204
    assert http.patch(loc, content=data[:10], headers=patch).status_code == 409  # stale offset
    assert http.head(loc, headers={"Tus-Resumable": "1.0.0"}).headers["Upload-Offset"] == "10"
    assert http.patch(loc, content=data[10:], headers={**patch, "Upload-Offset": "10"}).status_code == 204
    r = http.post(f"/api/tasks/{tid}/annotations/", params={"format": "COCO 1.0", "filename": "a.json"},
                  headers={"Upload-Finish": "true"})
    assert r.status_code == 202 and _poll(http, r.json()["rq_id"])[-1] == "finished"


@pytest.mark.parametrize("version", ["2.23.1", "2.31.0", "2.32.0", "2.72.0"])
def test_export_and_result_url_by_version(make_fake, version: str) -> None:  # noqa: F811
    fake = make_fake(version)
    http = _session(fake)
    tid = _task_with_image(http)
    r = http.put(f"/api/tasks/{tid}/annotations", params={"format": "COCO 1.0"},
                 files={"annotation_file": ("a.json", _coco("a.jpg"))}) if not fake.at_least(2, 38) else \
        http.post(f"/api/tasks/{tid}/annotations", params={"format": "COCO 1.0"},
                  files={"annotation_file": ("a.json", _coco("a.jpg"))})
    _poll(http, r.json()["rq_id"])
    legacy = http.get(f"/api/tasks/{tid}/annotations", params={"format": "COCO 1.0"})
    assert legacy.status_code == (410 if fake.at_least(2, 32) else 202)
    r = http.post(f"/api/tasks/{tid}/dataset/export", params={"format": "COCO 1.0", "save_images": "false"})
    assert r.status_code == 202
    rq_id = r.json()["rq_id"]
    assert _poll(http, rq_id)[-1] == "finished"
    result_url = http.get(f"/api/requests/{quote(rq_id, safe='')}").json()["result_url"]
    assert ("/dataset/download?rq_id=" in result_url) is fake.at_least(2, 32)
    assert ("action=download" in result_url) is not fake.at_least(2, 32)
    z = zipfile.ZipFile(io.BytesIO(http.get(result_url).content))
    doc = json.loads(z.read("annotations/instances_default.json"))
    assert doc["annotations"][0]["attributes"] == {"occluded": True, "rotation": 0.0}
    assert http.post(f"/api/tasks/{tid}/dataset/export", params={"format": "YOLO 1.1"}).status_code == 400


def test_unknown_request_and_deleted_task_are_404(fake_cvat: FakeCvat) -> None:  # noqa: F811
    http = _session(fake_cvat)
    tid = _task(http)
    assert http.get("/api/requests/nope").status_code == 404
    assert http.delete(f"/api/tasks/{tid}").status_code == 204
    assert http.get(f"/api/tasks/{tid}").status_code == 404
    assert http.post(f"/api/tasks/{tid}/dataset/export", params={"format": "COCO 1.0"}).status_code == 404


def test_tasks_need_labels_or_project_and_lists_paginate(fake_cvat: FakeCvat) -> None:  # noqa: F811
    http = _session(fake_cvat)
    assert http.post("/api/tasks", json={"name": "t"}).status_code == 400
    assert http.post("/api/tasks", json={"name": "t", "project_id": 99}).status_code == 400
    for _ in range(12):
        _task(http)
    page = http.get("/api/tasks").json()
    assert page["count"] == 12 and len(page["results"]) == 10 and page["next"]
    assert http.get(page["next"]).json()["next"] is None


CVAT_JSON = "application/vnd.cvat+json"


def test_content_negotiation_406_on_every_endpoint(fake_cvat: FakeCvat) -> None:  # noqa: F811
    """CVAT's only renderer is application/vnd.cvat+json: `Accept: application/json` alone is refused (406,
    before authentication), on /api/server/about too; responses say application/vnd.cvat+json."""
    http = _session(fake_cvat)
    tid = _task_with_image(http)
    rq_id = http.post(f"/api/tasks/{tid}/dataset/export", params={"format": "COCO 1.0"}).json()["rq_id"]
    _poll(http, rq_id)
    result_url = http.get(f"/api/requests/{quote(rq_id, safe='')}").json()["result_url"]
    endpoints = [("GET", "/api/server/about"), ("POST", "/api/auth/login"), ("GET", "/api/users/self"),
                 ("GET", "/api/tasks"), ("GET", f"/api/tasks/{tid}"), ("GET", "/api/labels"),
                 ("GET", f"/api/tasks/{tid}/data/meta"), ("POST", f"/api/tasks/{tid}/dataset/export"),
                 ("GET", f"/api/requests/{quote(rq_id, safe='')}"), ("GET", result_url)]
    refused = {"detail": "Could not satisfy the request Accept header."}
    for method, url in endpoints:
        for anon in (False, True):  # negotiation comes before authentication: 406, not 401
            client = httpx.Client(base_url=fake_cvat.url) if anon else http
            r = client.request(method, url, headers={"Accept": "application/json"})
            assert (r.status_code, r.json()) == (406, refused), (method, url, anon)
            assert r.headers["Content-Type"] == CVAT_JSON
    for accept in (CVAT_JSON, f"{CVAT_JSON}; version=2.0", "*/*", "application/*", f"application/json, {CVAT_JSON}"):
        r = http.get(f"/api/tasks/{tid}", headers={"Accept": accept})
        assert r.status_code == 200 and r.headers["Content-Type"] == CVAT_JSON, accept
        assert r.json()["id"] == tid
    no_accept = httpx.Client(base_url=fake_cvat.url, headers={"Accept": ""})
    assert no_accept.get("/api/server/about").status_code == 200
    r = http.get("/api/server/about", headers={"Accept": f"{CVAT_JSON}; version=1.0"})
    assert (r.status_code, r.json()) == (406, {"detail": 'Invalid version in "Accept" header.'})
    assert http.get("/api/server/about", headers={"Accept": "text/html"}).status_code == 406


def test_label_rename_by_patch(fake_cvat: FakeCvat) -> None:  # noqa: F811
    http = _session(fake_cvat)
    tid = _task_with_image(http)
    r = http.post(f"/api/tasks/{tid}/annotations", params={"format": "COCO 1.0"},
                  files={"annotation_file": ("a.json", _coco("a.jpg"))}) if fake_cvat.at_least(2, 38) else \
        http.put(f"/api/tasks/{tid}/annotations", params={"format": "COCO 1.0"},
                 files={"annotation_file": ("a.json", _coco("a.jpg"))})
    _poll(http, r.json()["rq_id"])
    (label,) = http.get("/api/labels", params={"task_id": tid}).json()["results"]
    assert http.patch(f"/api/labels/{label['id']}", json={"name": ""}).status_code == 400
    r = http.patch(f"/api/labels/{label['id']}", json={"name": "automobile"})
    assert r.status_code == 200 and r.json()["name"] == "automobile"
    assert http.get(f"/api/labels/{label['id']}").json()["name"] == "automobile"
    assert http.patch("/api/labels/999", json={"name": "x"}).status_code == 404
    doc = fake_cvat.annotations(tid)
    assert [c["name"] for c in doc["categories"]] == ["automobile"] and len(doc["annotations"]) == 1


def _import(http: httpx.Client, fake: FakeCvat, tid: int, doc: dict) -> None:
    files = {"annotation_file": ("a.json", json.dumps(doc).encode())}
    r = (http.post if fake.at_least(2, 38) else http.put)(f"/api/tasks/{tid}/annotations",
                                                          params={"format": "COCO 1.0"}, files=files)
    assert _poll(http, r.json()["rq_id"])[-1] == "finished"


def test_coordinates_are_rounded_and_area_is_the_raster_pixel_count(fake_cvat: FakeCvat) -> None:  # noqa: F811
    """CVAT rounds shape points to 2 decimals on import and bboxes on export; its COCO `area` is the pixel count
    of the rasterised shape; a second round trip of the rounded values is exact."""
    from pycocotools import mask as mask_utils

    http = _session(fake_cvat)
    tid = _task_with_image(http)  # one 32 x 24 frame
    poly = [1.123456, 2.987654, 20.0, 2.5, 20.25, 19.995, 1.5, 21.004999]
    doc = json.loads(_coco("a.jpg"))
    doc["annotations"] = [
        dict(doc["annotations"][0], bbox=[3.33333333, 4.44444444, 16.03, 13.72]),
        dict(doc["annotations"][0], id=2, segmentation=[poly], bbox=[1.0, 2.0, 19.0, 19.0]),
    ]
    _import(http, fake_cvat, tid, doc)
    box, polygon = fake_cvat.annotations(tid)["annotations"]
    assert box["bbox"] == [3.33, 4.44, 16.03, 13.72]
    corners = [[3.33, 4.44, 19.36, 4.44, 19.36, 18.16, 3.33, 18.16]]
    raster = float(mask_utils.area(mask_utils.merge(mask_utils.frPyObjects(corners, 24, 32))))
    assert box["area"] == raster == 224.0 and box["area"] != pytest.approx(16.03 * 13.72)  # pixels, not w * h
    assert polygon["segmentation"] == [[1.12, 2.99, 20.0, 2.5, 20.25, 20.0, 1.5, 21.0]]
    assert polygon["bbox"] == [1.12, 2.5, 19.13, 18.5]
    expected = mask_utils.area(mask_utils.merge(mask_utils.frPyObjects(polygon["segmentation"], 24, 32)))
    assert polygon["area"] == float(expected)
    again = fake_cvat.annotations(tid)
    _import(http, fake_cvat, tid, again)
    assert fake_cvat.annotations(tid)["annotations"] == again["annotations"]  # rounded values are stable


def _oriented_jpeg(w: int, h: int, orientation: int) -> bytes:
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.new("RGB", (w, h), (200, 30, 30)).save(out, "JPEG", exif=exif)
    return out.getvalue()


def test_exif_orientation_is_applied_to_the_frames_it_builds(fake_cvat: FakeCvat) -> None:  # noqa: F811
    """An image stored as 48 x 27 with orientation 6 becomes a 27 x 48 frame (data/meta and the COCO export say
    so), while the boxes sent stay in the coordinates they were sent in."""
    http = _session(fake_cvat)
    tid = _task(http)
    files = {"client_files[0]": ("turned.jpg", _oriented_jpeg(48, 27, 6)),
             "client_files[1]": ("flipped.jpg", _oriented_jpeg(48, 27, 3)),
             "client_files[2]": ("plain.jpg", _oriented_jpeg(48, 27, 1))}
    r = http.post(f"/api/tasks/{tid}/data", files=files, data={"image_quality": "70", "sorting_method": "predefined"})
    assert _poll(http, r.json()["rq_id"])[-1] == "finished"
    meta = http.get(f"/api/tasks/{tid}/data/meta").json()
    assert [(f["name"], f["width"], f["height"]) for f in meta["frames"]] == [
        ("turned.jpg", 27, 48), ("flipped.jpg", 48, 27), ("plain.jpg", 48, 27)]
    assert meta["size"] == 3 and meta["deleted_frames"] == []
    doc = json.loads(_coco("turned.jpg"))
    doc["images"][0].update(width=48, height=27)
    _import(http, fake_cvat, tid, doc)
    exported = fake_cvat.annotations(tid)
    assert [(i["width"], i["height"]) for i in exported["images"]] == [(27, 48), (48, 27), (48, 27)]
    assert exported["annotations"][0]["bbox"] == [1.5, 2.0, 3.0, 4.0]  # not turned with the frame


def test_deleted_frames_are_hidden_but_still_exported(fake_cvat: FakeCvat) -> None:  # noqa: F811
    http = _session(fake_cvat)
    tid = _task(http)
    files = {f"client_files[{i}]": (f"f{i}.jpg", _jpeg(i)) for i in range(4)}
    r = http.post(f"/api/tasks/{tid}/data", files=files, data={"image_quality": "70", "sorting_method": "predefined"})
    _poll(http, r.json()["rq_id"])
    doc = json.loads(_coco("f3.jpg"))
    _import(http, fake_cvat, tid, doc)
    for bad in ({"deleted_frames": [4]}, {"deleted_frames": "0"}, {"deleted_frames": [True]}):
        assert http.patch(f"/api/tasks/{tid}/data/meta", json=bad).status_code == 400
    r = http.patch(f"/api/tasks/{tid}/data/meta", json={"deleted_frames": [3, 0, 3]})
    assert r.status_code == 200 and r.json()["deleted_frames"] == [0, 3]
    assert http.get(f"/api/tasks/{tid}/data/meta").json()["deleted_frames"] == [0, 3]
    exported = fake_cvat.annotations(tid)  # CVAT 2.23's COCO export still lists them, with their shapes
    assert [i["file_name"] for i in exported["images"]] == ["f0.jpg", "f1.jpg", "f2.jpg", "f3.jpg"]
    assert len(exported["annotations"]) == 1 and exported["annotations"][0]["image_id"] == 4
    assert http.patch(f"/api/tasks/{tid}/data/meta", json={"deleted_frames": []}).json()["deleted_frames"] == []
