"""Export → CVAT → pull back through the facade and jobs, against the fake CVAT over real HTTP."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from cvat_fake.fixtures import fake_cvat, make_fake  # noqa: F401
from test_cvat_sync_support import capi, connect, import_version, precise_export, sample_export  # noqa: F401

from dsgen_core.cvat_sync.records import ExportRequest
from dsgen_core.errors import InvalidRequest
from dsgen_core.lake.store import read_tables


def _export(capi, admin, fake, version_id, **kw):  # noqa: ANN001, ANN003, F811
    conn = connect(capi, admin, fake)
    req = ExportRequest(version_id=version_id, connection=conn, project="relabel", task_name="cars-1",
                        **{"segment_size": 5, "image_quality": 90, **kw})
    started = capi.start_cvat_export(admin, req)
    info = capi.run_job_here(admin, started.job_id)
    assert info.status == "SUCCEEDED", (info.error, info.log)
    return started, capi.get_cvat_export(admin, started.export_id)


def _tables(capi, admin, version_id):  # noqa: ANN001, F811
    return read_tables(capi._ready_folder(admin, version_id))


def test_unchanged_round_trip_is_lossless(capi, fake_cvat, sample_export):  # noqa: F811
    admin = capi.default_actor
    vid = import_version(capi, admin, sample_export)
    capi.add_tags(admin, vid, 1, ["keep"])
    capi.set_metadata(admin, vid, 2, {"weather": "rain"})
    started, export = _export(capi, admin, fake_cvat, vid)
    assert export.status == "DONE" and len(export.tasks) == 1
    task = export.tasks[0]
    assert task.url == f"{fake_cvat.url}/tasks/{task.task_id}" and export.links == [task.url]
    assert fake_cvat.tasks()[0]["size"] == 12 and fake_cvat.tasks()[0]["shapes"] > 0

    preview = capi.preview_pull(admin, task.url, into="cars")
    d = preview.diff
    assert d.is_zero, d.summary()
    assert (d.added, d.removed, d.moved, d.relabeled, d.attributes_changed) == (0, 0, 0, 0, 0)
    assert d.images_matched == 12 and d.unchanged == _tables(capi, admin, vid).annotations.num_rows
    versions = len(capi.get_group(admin, "cars").versions)
    with pytest.raises(InvalidRequest, match="nothing changed.*even_if_unchanged"):
        capi.commit_pull(admin, preview.pull_id)  # a zero diff creates nothing unless asked
    assert len(capi.get_group(admin, "cars").versions) == versions
    pulled = capi.commit_pull(admin, preview.pull_id, even_if_unchanged=True)
    assert capi.run_job_here(admin, pulled.job_id).status == "SUCCEEDED"

    src, new = _tables(capi, admin, vid), _tables(capi, admin, pulled.version_id)
    assert new.annotations.equals(src.annotations)  # the annotations table, row for row, value for value
    assert new.categories.equals(src.categories) and new.images.equals(src.images)
    v_src, v_new = capi.get_version(admin, vid), capi.get_version(admin, pulled.version_id)
    assert v_new.content_hash == v_src.content_hash
    assert (v_new.group_name, v_new.split, v_new.version) == ("cars", "train", "1.1.0")
    assert v_new.parents == [vid]
    cur = capi.image_curation(admin, pulled.version_id, 1)
    assert cur.tags == ["keep"]
    assert capi.image_curation(admin, pulled.version_id, 2).metadata == {"weather": "rain"}
    actions = {e.action for e in capi.list_audit(admin)}
    assert {"cvat.export.start", "cvat.export.done", "cvat.pull.preview", "cvat.pull.commit"} <= actions


def test_relabeled_pull_back_diff_and_new_version(capi, fake_cvat, sample_export):  # noqa: F811
    admin = capi.default_actor
    vid = import_version(capi, admin, sample_export)
    _, export = _export(capi, admin, fake_cvat, vid)
    tid = export.tasks[0].task_id
    shapes = fake_cvat.shapes(tid)
    labels = {lab.id: lab for lab in fake_cvat.labels(tid)}
    box = next(s for s in shapes if s.type == "rectangle")
    gone = next(s for s in shapes if s.type == "rectangle" and s.id != box.id and s.frame != box.frame)
    with_attr = next(s for s in shapes if labels[s.label_id].attributes and s.id not in (box.id, gone.id))
    attr = labels[with_attr.label_id].attributes[0]
    new_value = next(v for v in (attr.values if attr.input_type in ("select", "radio") else ["true", "false"])
                     if v != with_attr.attributes.get(attr.id))
    fake_cvat.move_shape(tid, box.id, 3.0, 2.0)
    fake_cvat.delete_shape(tid, gone.id)
    frame = fake_cvat.task(tid).frames[0].name
    first_label = labels[min(labels)].name
    fake_cvat.add_box(tid, frame, first_label, (1.0, 2.0, 11.0, 7.0))
    fake_cvat.set_attribute(tid, with_attr.id, attr.name, new_value)
    renamed_from = labels[max(labels)].name
    fake_cvat.rename_label(tid, renamed_from, renamed_from + "_v2")

    d = capi.preview_pull(admin, tid, into="cars").diff
    assert (d.added, d.removed, d.moved, d.relabeled, d.attributes_changed) == (1, 1, 1, 0, 1), d.summary()
    assert d.classes_renamed == [(renamed_from, renamed_from + "_v2")] and d.classes_added == []
    assert d.images_not_matched == [] and d.images_missing == []
    changed_frames = {box.frame, gone.frame, 0, with_attr.frame}
    assert d.images_changed == len(changed_frames)
    kinds = sorted(c.change for c in d.changes)
    assert kinds == ["added", "attributes", "moved", "removed"]

    pulled = capi.commit_pull(admin, capi.preview_pull(admin, tid, into="cars").pull_id)
    assert capi.run_job_here(admin, pulled.job_id).status == "SUCCEEDED"
    src, new = _tables(capi, admin, vid), _tables(capi, admin, pulled.version_id)
    assert new.annotations.num_rows == src.annotations.num_rows  # one added, one removed
    assert renamed_from + "_v2" in new.categories.column("name").to_pylist()
    supers = dict(zip(src.categories.column("category_id").to_pylist(),
                      src.categories.column("supercategory").to_pylist(), strict=True))
    assert dict(zip(new.categories.column("category_id").to_pylist(),
                    new.categories.column("supercategory").to_pylist(), strict=True)) == supers
    rows = {r["annotation_id"]: r for r in new.annotations.to_pylist()}
    old = {r["annotation_id"]: r for r in src.annotations.to_pylist()}
    assert len(set(old) - set(rows)) == 1 and len(set(rows) - set(old)) == 1
    new_row = rows[max(rows)]
    assert (new_row["bbox_x"], new_row["bbox_y"], new_row["bbox_w"], new_row["bbox_h"]) == (1.0, 2.0, 11.0, 7.0)
    differing = [i for i in set(old) & set(rows) if old[i] != rows[i]]
    assert len(differing) == 2  # the moved box and the changed attribute; every other row identical
    assert capi.get_version(admin, pulled.version_id).version == "1.1.0"


def _boxes(detail: str) -> list[list[str]]:
    """The printed boxes of a change line, as the strings shown."""
    return [re.findall(r"-?\d+\.\d+", part) for part in re.findall(r"\[([^\]]*)\]", detail)]


def test_unchanged_task_of_precise_data_pulls_as_a_no_op(capi, fake_cvat, precise_export):  # noqa: F811
    """CVAT rounds coordinates to 2 decimals and reports raster areas: within that rounding nothing moved, and
    an (asked-for) commit keeps our values: the same tables, the same content hash."""
    admin = capi.default_actor
    vid = import_version(capi, admin, precise_export, group="precise")
    _, export = _export(capi, admin, fake_cvat, vid)
    tid = export.tasks[0].task_id
    ours = _tables(capi, admin, vid).annotations.to_pylist()
    theirs = fake_cvat.annotations(tid)["annotations"]
    assert {round(a["bbox"][0], 9) for a in theirs} != {round(r["bbox_x"], 9) for r in ours}  # CVAT rounded
    assert {a["area"] for a in theirs} != {r["area"] for r in ours}  # and reports pixel counts
    d = capi.preview_pull(admin, tid, into="precise").diff
    assert (d.added, d.removed, d.moved, d.relabeled, d.attributes_changed) == (0, 0, 0, 0, 0), d.changes[:3]
    assert d.is_zero and d.unchanged == len(ours)
    pulled = capi.commit_pull(admin, capi.preview_pull(admin, tid, into="precise").pull_id, even_if_unchanged=True)
    assert capi.run_job_here(admin, pulled.job_id).status == "SUCCEEDED"
    src, new = _tables(capi, admin, vid), _tables(capi, admin, pulled.version_id)
    assert new.annotations.equals(src.annotations) and new.images.equals(src.images)  # our values, not CVAT's
    assert capi.get_version(admin, pulled.version_id).content_hash == capi.get_version(admin, vid).content_hash


def test_real_edits_of_precise_data_change_only_their_rows(capi, fake_cvat, precise_export):  # noqa: F811
    admin = capi.default_actor
    vid = import_version(capi, admin, precise_export, group="precise")
    _, export = _export(capi, admin, fake_cvat, vid)
    tid = export.tasks[0].task_id
    boxes = [s for s in fake_cvat.shapes(tid) if s.type == "rectangle"]
    big = boxes[0]
    # a small move that one decimal cannot show: x and x + 0.02 print the same with .1f
    small = next(s for s in boxes[1:] if 0.05 < (s.points[0] * 10) % 1 < 0.7)
    fake_cvat.move_shape(tid, big.id, 0.5, 0.0)
    fake_cvat.move_shape(tid, small.id, 0.02, 0.0)
    d = capi.preview_pull(admin, tid, into="precise").diff
    assert (d.added, d.removed, d.moved, d.relabeled, d.attributes_changed) == (0, 0, 2, 0, 0), d.changes
    for c in d.changes:
        old, new = _boxes(c.detail)[:2]
        assert old[0] != new[0] and old[1:] == new[1:], c.detail  # x visibly moved; y, w, h did not
    pulled = capi.commit_pull(admin, capi.preview_pull(admin, tid, into="precise").pull_id)
    assert capi.run_job_here(admin, pulled.job_id).status == "SUCCEEDED"
    src = {r["annotation_id"]: r for r in _tables(capi, admin, vid).annotations.to_pylist()}
    new = {r["annotation_id"]: r for r in _tables(capi, admin, pulled.version_id).annotations.to_pylist()}
    changed = sorted(i for i in src if src[i] != new[i])
    assert len(changed) == 2 and set(src) == set(new)  # only the two moved boxes' rows
    for i in changed:
        moved_by = new[i]["bbox_x"] - src[i]["bbox_x"]
        assert min(abs(moved_by - 0.5), abs(moved_by - 0.02)) <= 0.0051
        assert new[i]["bbox_y"] == src[i]["bbox_y"] and new[i]["bbox_w"] == src[i]["bbox_w"]
        assert new[i]["area"] == src[i]["area"]  # a move keeps a box's w x h, and our rows' area convention


def test_attributes_holding_objects_or_lists_travel_as_json_text(capi, fake_cvat, sample_export, tmp_path):  # noqa: F811
    """dsgen keeps any JSON in an attribute; CVAT's attributes hold text: such attributes are declared as text
    and sent as JSON text, and they come back as the objects and lists they were."""
    src = tmp_path / "json-attrs"
    shutil.copytree(sample_export, src)
    path = src / "annotations" / "instances_default.json"
    doc = json.loads(path.read_text())
    for i, a in enumerate(doc["annotations"]):
        if i % 3 == 0:
            a["attributes"]["track"] = {"id": i, "tags": ["parked", "night"]}
        elif i % 3 == 1:
            a["attributes"]["track"] = [i, i + 1.5]
    path.write_text(json.dumps(doc))
    admin = capi.default_actor
    vid = import_version(capi, admin, src, group="json")
    started, export = _export(capi, admin, fake_cvat, vid)
    assert export.status == "DONE"
    tid = export.tasks[0].task_id
    labels = {lab.id: lab for lab in fake_cvat.labels(tid)}
    tracked = [lab for lab in labels.values() if lab.attribute("track")]
    assert tracked and {lab.attribute("track").input_type for lab in tracked} == {"text"}
    shapes = [s for s in fake_cvat.shapes(tid) if labels[s.label_id].attribute("track")]
    stored = [json.loads(s.attributes[labels[s.label_id].attribute("track").id]) for s in shapes
              if s.attributes[labels[s.label_id].attribute("track").id]]
    assert {"id": 0, "tags": ["parked", "night"]} in stored and [1, 2.5] in stored  # JSON text in CVAT

    d = capi.preview_pull(admin, tid, into="json").diff
    assert d.is_zero, d.changes[:3]
    edited = next(s for s in shapes if s.attributes[labels[s.label_id].attribute("track").id].startswith("{"))
    fake_cvat.set_attribute(tid, edited.id, "track", '{"id": 99, "tags": []}')
    preview = capi.preview_pull(admin, tid, into="json")
    assert (preview.diff.attributes_changed, preview.diff.moved) == (1, 0), preview.diff.changes
    pulled = capi.commit_pull(admin, preview.pull_id)
    assert capi.run_job_here(admin, pulled.job_id).status == "SUCCEEDED"
    src_rows = {r["annotation_id"]: r for r in _tables(capi, admin, vid).annotations.to_pylist()}
    new_rows = {r["annotation_id"]: r for r in _tables(capi, admin, pulled.version_id).annotations.to_pylist()}
    changed = [i for i in src_rows if src_rows[i] != new_rows[i]]
    assert len(changed) == 1 and json.loads(new_rows[changed[0]]["attributes"])["track"] == {"id": 99, "tags": []}


def test_frames_deleted_in_cvat_are_removed_images(capi, fake_cvat, sample_export):  # noqa: F811
    """CVAT hides deleted frames but its COCO export (2.23) still lists them: the pull reads /data/meta, shows
    them as images deleted in CVAT, and the new version leaves them out (with their annotations)."""
    import httpx

    admin = capi.default_actor
    vid = import_version(capi, admin, sample_export)
    capi.add_tags(admin, vid, 1, ["keep"])
    _, export = _export(capi, admin, fake_cvat, vid)
    task = export.tasks[0]
    key = httpx.post(f"{fake_cvat.url}/api/auth/login",
                     json={"username": fake_cvat.username, "password": fake_cvat.password}).json()["key"]
    r = httpx.patch(f"{fake_cvat.url}/api/tasks/{task.task_id}/data/meta", json={"deleted_frames": [3, 5]},
                    headers={"Authorization": f"Token {key}"})
    assert r.status_code == 200
    frames = [f.name for f in fake_cvat.task(task.task_id).frames]
    d = capi.preview_pull(admin, task.task_id, into="cars").diff
    assert d.images_deleted == [frames[3], frames[5]] and not d.is_zero
    src = _tables(capi, admin, vid)
    image_of = {n: i for i, n in zip(src.images.column("image_id").to_pylist(),
                                     src.images.column("file_name").to_pylist(), strict=True)}
    gone = {image_of[n.replace("__", "/")] for n in (frames[3], frames[5])}
    n_gone = sum(1 for i in src.annotations.column("image_id").to_pylist() if i in gone)
    assert d.annotations_of_deleted == n_gone and (d.added, d.removed, d.moved) == (0, 0, 0)
    pulled = capi.commit_pull(admin, capi.preview_pull(admin, task.task_id, into="cars").pull_id)
    assert capi.run_job_here(admin, pulled.job_id).status == "SUCCEEDED"
    new = _tables(capi, admin, pulled.version_id)
    assert sorted(new.images.column("image_id").to_pylist()) == sorted(set(image_of.values()) - gone)
    assert new.annotations.num_rows == src.annotations.num_rows - n_gone
    assert not gone & set(new.annotations.column("image_id").to_pylist())
    keep = [r for r in src.annotations.to_pylist() if r["image_id"] not in gone]
    assert new.annotations.to_pylist() == keep  # every other row exactly as it was
    assert capi.get_version(admin, pulled.version_id).num_images == 10
    assert 1 not in gone and capi.image_curation(admin, pulled.version_id, 1).tags == ["keep"]
