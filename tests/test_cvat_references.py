"""Exports that send file references (CVAT's share or a cloud storage) instead of image bytes: the fake CVAT
reads the files itself; the round trip stays lossless; images CVAT cannot see are refused up front."""

from __future__ import annotations

import pytest
from cvat_fake.fixtures import make_fake  # noqa: F401
from test_cvat_sync_support import capi, import_on_share, sample_export  # noqa: F401

from dsgen_core.cvat_sync.records import ExportRequest
from dsgen_core.errors import InvalidRequest
from dsgen_core.lake.store import read_tables


@pytest.fixture
def nas(tmp_path):
    """The share both sides see: dsgen under this folder, the fake CVAT as its share root."""
    return tmp_path / "nas"


def test_export_by_reference_sends_no_bytes_and_round_trips(capi, make_fake, nas, sample_export):  # noqa: F811
    admin = capi.default_actor
    vid = import_on_share(capi, admin, sample_export, nas)
    fake = make_fake("2.72.0", share_root=nas)
    conn = capi.add_cvat_connection(admin, "nas-cvat", fake.url, username=fake.username, secret=fake.password,
                                    share_root=str(nas))
    assert conn.share_root == str(nas.resolve()) and "share" in str(conn)
    started = capi.start_cvat_export(admin, ExportRequest(version_id=vid, connection=conn.id, project="p",
                                                          task_name="by-ref", max_images_per_task=5,
                                                          send_references=True))
    info = capi.run_job_here(admin, started.job_id)
    assert info.status == "SUCCEEDED", (info.error, info.log)
    export = capi.get_cvat_export(admin, started.export_id)
    assert export.send_references and [t.num_images for t in export.tasks] == [5, 5, 2]
    assert "by reference (no bytes sent)" in info.log
    sent = sum(r.body_bytes for r in fake.requests(path=r"/data/?$"))
    image_bytes = sum(p.stat().st_size for p in (nas / "cam3" / "images").rglob("*.jpg"))
    assert 0 < sent < image_bytes / 4, (sent, image_bytes)  # the data requests carried paths, not images
    assert all("multipart" not in r.headers.get("Content-Type", "") for r in fake.requests("POST", r"/data/?$"))
    files = {im["file_name"]: im for im in read_tables(capi._ready_folder(admin, vid)).images.to_pylist()}
    frames = [f for t in fake.tasks() for f in t["frames"]]
    assert sorted(frames) == sorted(f"cam3/images/{name}" for name in files)  # CVAT names them by share path
    for t in fake.tasks():  # the bytes CVAT read are the files on the share
        for name, data in fake.uploaded_files(t["id"]).items():
            assert data == (nas / name).read_bytes()

    preview = capi.preview_pull(admin, [t.task_id for t in export.tasks], into="nas")
    assert preview.diff.is_zero, preview.diff.summary()
    assert preview.diff.images_matched == 12


def test_references_need_a_share_and_images_under_it(capi, make_fake, nas, sample_export, tmp_path):  # noqa: F811
    admin = capi.default_actor
    fake = make_fake("2.72.0", share_root=nas)
    plain = capi.add_cvat_connection(admin, "plain", fake.url, username=fake.username, secret=fake.password)
    vid = import_on_share(capi, admin, sample_export, nas)
    with pytest.raises(InvalidRequest, match="has no share folder"):
        capi.start_cvat_export(admin, ExportRequest(version_id=vid, connection=plain.id, project="p", task_name="t",
                                                    send_references=True))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    other = capi.add_cvat_connection(admin, "other", fake.url, username=fake.username, secret=fake.password,
                                     share_root=str(elsewhere))
    with pytest.raises(InvalidRequest, match=r"12 image\(s\) are not stored under the share folder .*elsewhere.*"
                                             r"image 1 \(.*cam3/images/.*\).* and 7 more; send them as bytes"):
        capi.start_cvat_export(admin, ExportRequest(version_id=vid, connection=other.id, project="p", task_name="t",
                                                    send_references=True))
    assert capi.list_cvat_exports(admin) == []  # nothing planned, nothing queued
    for bad, match in ((dict(share_root="relative/dir"), "absolute path of an existing folder"),
                       (dict(share_root=str(tmp_path / "missing")), "existing folder"),
                       (dict(cloud_storage_id=3), "needs the share folder too"),
                       (dict(share_root=str(nas), cloud_storage_id=0), "whole number >= 1")):
        with pytest.raises(InvalidRequest, match=match):
            capi.add_cvat_connection(admin, "bad", fake.url, username=fake.username, secret=fake.password,
                                     check=False, **bad)


def test_export_by_reference_from_a_cloud_storage(capi, make_fake, nas, sample_export):  # noqa: F811
    admin = capi.default_actor
    vid = import_on_share(capi, admin, sample_export, nas)
    fake = make_fake("2.72.0", cloud_storages={4: nas})
    conn = capi.add_cvat_connection(admin, "bucket", fake.url, username=fake.username, secret=fake.password,
                                    share_root=str(nas), cloud_storage_id=4)
    started = capi.start_cvat_export(admin, ExportRequest(version_id=vid, connection=conn.id, project="p",
                                                          task_name="cloud", send_references=True))
    info = capi.run_job_here(admin, started.job_id)
    assert info.status == "SUCCEEDED", (info.error, info.log)
    assert "by reference (no bytes sent)" in info.log
    assert fake.tasks()[0]["size"] == 12  # the fake has no share: only the cloud storage could serve the files
