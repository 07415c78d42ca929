"""The COCO file sent to CVAT: what CVAT's importer reads, equal to the full-fidelity COCO writer's on every such
field, and read by pycocotools (the peer) as the same annotations."""

from __future__ import annotations

import json

from pycocotools.coco import COCO
from test_cvat_sync_support import capi, import_version, sample_export  # noqa: F401

from dsgen_core.cvat_sync.outgoing import write_cvat_coco
from dsgen_core.cvat_sync.subset import frame_names, part_tables
from dsgen_core.formats.coco_writer import coco_dict
from dsgen_core.lake.store import read_tables

READ_BY_CVAT = {"images": ("id", "width", "height", "file_name"), "categories": ("id", "name", "supercategory"),
                "annotations": ("id", "image_id", "category_id", "segmentation", "area", "bbox", "iscrowd",
                                "attributes")}


def test_cvat_coco_has_what_the_importer_reads(capi, sample_export, tmp_path):  # noqa: F811
    admin = capi.default_actor
    vid = import_version(capi, admin, sample_export)
    tables = read_tables(capi._ready_folder(admin, vid))
    ids = tables.images.column("image_id").to_pylist()[::-1][:9]  # a subset, not in id order
    file_of = dict(zip(tables.images.column("image_id").to_pylist(), tables.images.column("file_name").to_pylist(),
                       strict=True))
    names = frame_names([file_of[i] for i in ids])
    part = part_tables(tables, ids, names)
    path = write_cvat_coco(part, tmp_path / "task.json")
    ours, full = json.loads(path.read_text()), coco_dict(part)
    for key, fields in READ_BY_CVAT.items():
        assert [{f: r[f] for f in fields if f in r} for r in ours[key]] == [
            {f: r[f] for f in fields if f in r} for r in full[key]], key
    assert {a["image_id"] for a in ours["annotations"]} <= set(ids) and ours["annotations"]
    kinds = {"rle" if isinstance(a["segmentation"], dict) else "poly" if a["segmentation"] else "box"
             for a in ours["annotations"]}
    assert kinds == {"rle", "poly", "box"}
    peer = COCO(str(path))  # pycocotools reads it, masks included
    (tmp_path / "full.json").write_text(json.dumps(full))
    reference = COCO(str(tmp_path / "full.json"))
    assert sorted(peer.getAnnIds()) == sorted(a["id"] for a in full["annotations"])
    for a in full["annotations"]:
        assert peer.anns[a["id"]]["bbox"] == a["bbox"]
        if a["segmentation"]:  # the same pixels as the full writer's file gives
            assert peer.annToMask(peer.anns[a["id"]]).sum() == reference.annToMask(a).sum() > 0
    empty = write_cvat_coco(part_tables(tables, [], []), tmp_path / "empty.json")
    assert json.loads(empty.read_text())["annotations"] == []
