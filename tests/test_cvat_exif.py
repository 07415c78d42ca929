"""Images with an EXIF orientation: CVAT builds them turned, so an export needs a choice (rotate / as-is); with
"rotate" the pixels go upright and every shape is turned exactly with them, and turned back on pull-back."""

from __future__ import annotations

import io
import json

import pytest
from cvat_fake.fixtures import fake_cvat, make_fake  # noqa: F401
from PIL import Image
from test_cvat_sync_support import (  # noqa: F401
    ORIENTED,
    capi,
    connect,
    import_on_share,
    import_version,
    oriented_export,
    sample_export,
)

from dsgen_core.cvat_sync.records import ExportRequest
from dsgen_core.errors import InvalidRequest
from dsgen_core.lake.store import read_tables

TOL = 0.005 + 1e-6  # CVAT's 2-decimal rounding


def _request(conn, vid, **kw):  # noqa: ANN001, ANN003
    return ExportRequest(version_id=vid, connection=conn, project="p", task_name="turned", segment_size=5, **kw)


def _tables(capi, admin, vid):  # noqa: ANN001, F811
    return read_tables(capi._ready_folder(admin, vid))


def _run(capi, admin, req):  # noqa: ANN001, F811
    started = capi.start_cvat_export(admin, req)
    info = capi.run_job_here(admin, started.job_id)
    assert info.status == "SUCCEEDED", (info.error, info.log)
    return capi.get_cvat_export(admin, started.export_id)


def _shown_box(orientation: int, box: list[float], w: int, h: int) -> list[float]:
    """Where a box of a w x h stored image lies once the orientation is applied (written out per case)."""
    x, y, bw, bh = box
    if orientation == 6:  # turned 90° clockwise: the left edge becomes the top
        return [h - y - bh, x, bh, bw]
    if orientation == 8:  # turned 90° counter-clockwise
        return [y, w - x - bw, bh, bw]
    assert orientation == 3  # upside down
    return [w - x - bw, h - y - bh, bw, bh]


def _close(a: list[float], b: list[float]) -> bool:
    ca = [a[0], a[1], a[0] + a[2], a[1] + a[3]]
    cb = [b[0], b[1], b[0] + b[2], b[1] + b[3]]
    return all(abs(p - q) <= TOL for p, q in zip(ca, cb, strict=True))


def test_oriented_images_are_refused_without_a_choice(capi, fake_cvat, oriented_export):  # noqa: F811
    admin = capi.default_actor
    vid = import_version(capi, admin, oriented_export, group="phone")
    conn = connect(capi, admin, fake_cvat)
    preview = capi.preview_cvat_export(admin, _request(conn, vid))
    assert sorted(o.orientation for o in preview.oriented) == sorted(ORIENTED.values())
    assert preview.needs_exif_choice and (preview.num_images, preview.num_tasks) == (12, 1)
    with pytest.raises(InvalidRequest, match=r"3 of the 12 images carry an EXIF orientation \(.*turned 90° clockwise"
                                             r".*'rotate' sends them upright.*'as-is' sends"):
        capi.start_cvat_export(admin, _request(conn, vid))
    with pytest.raises(InvalidRequest, match="EXIF remedy 'sideways': expected one of rotate, as-is"):
        capi.start_cvat_export(admin, _request(conn, vid, exif="sideways"))
    assert fake_cvat.tasks() == [] and capi.list_cvat_exports(admin) == []  # nothing reached CVAT or the catalog


def test_rotate_sends_upright_pixels_and_turned_shapes_and_pulls_back(capi, fake_cvat, oriented_export):  # noqa: F811
    admin = capi.default_actor
    vid = import_version(capi, admin, oriented_export, group="phone")
    src = _tables(capi, admin, vid)
    images = {r["image_id"]: r for r in src.images.to_pylist()}
    oriented = {i: r["exif_orientation"] for i, r in images.items() if r["exif_orientation"]}
    assert sorted(oriented.values()) == sorted(ORIENTED.values())  # the import saw the tags
    export = _run(capi, admin, _request(connect(capi, admin, fake_cvat), vid, exif="rotate"))
    assert export.exif_remedy == "rotate"
    tid = export.tasks[0].task_id
    names = _frame_names(capi, admin, export.id)
    uploaded = fake_cvat.uploaded_files(tid)
    meta = {f.name: (f.width, f.height) for f in fake_cvat.task(tid).frames}
    for image_id, orientation in oriented.items():
        w, h = images[image_id]["width"], images[image_id]["height"]
        with Image.open(io.BytesIO(uploaded[names[image_id]])) as im:
            assert im.getexif().get(0x0112) is None  # upright pixels, no tag left for CVAT to apply
            assert im.size == ((h, w) if orientation in (6, 8) else (w, h)) == meta[names[image_id]]
    coco = fake_cvat.annotations(tid)
    frame = {im["id"]: im["file_name"] for im in coco["images"]}
    by_frame: dict[str, list[list[float]]] = {}
    for a in coco["annotations"]:
        by_frame.setdefault(frame[a["image_id"]], []).append(a["bbox"])
    for r in src.annotations.to_pylist():
        i = r["image_id"]
        box = [r["bbox_x"], r["bbox_y"], r["bbox_w"], r["bbox_h"]]
        want = _shown_box(oriented[i], box, images[i]["width"], images[i]["height"]) if i in oriented else box
        assert any(_close(got, want) for got in by_frame[names[i]]), (i, want, by_frame[names[i]])

    d = capi.preview_pull(admin, tid, into="phone").diff
    assert d.is_zero, d.changes[:3]
    assert d.frames_resized == 2  # orientations 6 and 8 turn the frame; 3 keeps its size
    # an annotator moves a box 2 px right on the upright frame of an image turned by 90°
    frames = [f.name for f in fake_cvat.task(tid).frames]
    shape, turned_id = next((s, i) for s in fake_cvat.shapes(tid) for i, o in oriented.items()
                            if o in (6, 8) and s.type == "rectangle" and frames[s.frame] == names[i])
    fake_cvat.move_shape(tid, shape.id, 2.0, 0.0)
    dy = -2.0 if oriented[turned_id] == 6 else 2.0  # turned clockwise: right there is up here
    preview = capi.preview_pull(admin, tid, into="phone")
    assert (preview.diff.moved, preview.diff.added, preview.diff.removed) == (1, 0, 0), preview.diff.changes
    pulled = capi.commit_pull(admin, preview.pull_id)
    assert capi.run_job_here(admin, pulled.job_id).status == "SUCCEEDED"
    new = _tables(capi, admin, pulled.version_id)
    assert new.images.equals(src.images)  # our sizes (and orientation tags) are kept
    old_rows = {r["annotation_id"]: r for r in src.annotations.to_pylist()}
    (changed,) = [r for r in new.annotations.to_pylist() if r != old_rows[r["annotation_id"]]]
    before = old_rows[changed["annotation_id"]]
    assert changed["image_id"] == turned_id
    assert abs(changed["bbox_y"] - (before["bbox_y"] + dy)) <= TOL
    assert changed["bbox_x"] == before["bbox_x"] and changed["bbox_w"] == before["bbox_w"]


def _frame_names(capi, admin, export_id: int) -> dict[int, str]:  # noqa: ANN001, F811
    with capi.app.catalog.session() as s:
        from sqlalchemy import select

        from dsgen_core.catalog.cvat_models import CvatExportTask

        (t,) = s.scalars(select(CvatExportTask).where(CvatExportTask.export_id == export_id)).all()
        return dict(zip(t.image_ids, t.frame_names, strict=True))


def test_as_is_sends_images_and_shapes_unchanged(capi, fake_cvat, oriented_export):  # noqa: F811
    admin = capi.default_actor
    vid = import_version(capi, admin, oriented_export, group="phone")
    export = _run(capi, admin, _request(connect(capi, admin, fake_cvat), vid, exif="as-is"))
    tid = export.tasks[0].task_id
    names = _frame_names(capi, admin, export.id)
    src = _tables(capi, admin, vid)
    uploaded = fake_cvat.uploaded_files(tid)
    for r in src.images.to_pylist():
        assert uploaded[names[r["image_id"]]] == capi.app.storage.local_path(r["uri"]).read_bytes()
    assert capi.preview_pull(admin, tid, into="phone").diff.is_zero


def test_rotate_by_reference_lets_cvat_turn_and_turns_the_shapes(capi, make_fake, oriented_export, tmp_path):  # noqa: F811
    admin = capi.default_actor
    nas = tmp_path / "nas"
    vid = import_on_share(capi, admin, oriented_export, nas)
    fake = make_fake("2.72.0", share_root=nas)
    conn = capi.add_cvat_connection(admin, "nas", fake.url, username=fake.username, secret=fake.password,
                                    share_root=str(nas))
    export = _run(capi, admin, _request(conn.id, vid, exif="rotate", send_references=True))
    tid = export.tasks[0].task_id
    src = _tables(capi, admin, vid)
    turned = {r["image_id"] for r in src.images.to_pylist() if r["exif_orientation"] in (6, 8)}
    names = _frame_names(capi, admin, export.id)
    sizes = {f.name: (f.width, f.height) for f in fake.task(tid).frames}
    for r in src.images.to_pylist():
        want = (r["height"], r["width"]) if r["image_id"] in turned else (r["width"], r["height"])
        assert sizes[names[r["image_id"]]] == want  # CVAT turned the referenced files itself
    coco = json.loads(json.dumps(fake.annotations(tid)))
    assert {(im["width"], im["height"]) for im in coco["images"]} == set(sizes.values())
    assert capi.preview_pull(admin, tid, into="nas").diff.is_zero
