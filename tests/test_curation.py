"""Curation rows through the facade: edits, bulk edits with confirmation and undo, CSV in and out,
permissions and the audit log — on the catalog under test (SQLite, or PostgreSQL when configured)."""

from __future__ import annotations

import csv

import pytest
from sqlalchemy import select
from test_curation_support import curation_api, make_user, make_version

from dsgen_core.catalog.models import AuditEntry, DatasetGroup
from dsgen_core.curation import store
from dsgen_core.curation.edits import BulkEdit, ConfirmationRequired
from dsgen_core.errors import InvalidRequest, NotFound, PermissionDenied


@pytest.fixture
def cur(api):
    return curation_api(api)


@pytest.fixture
def vid(api, admin):
    return make_version(api, admin.id)


def test_one_image_edits_and_typed_values(cur, admin, vid):
    cur.add_tags(admin, vid, 1, ["car", "rainy day"])
    r = cur.set_metadata(admin, vid, 1, {"weather": "rain", "speed": 55, "ratio": 0.5, "reviewed": True})
    assert r.changed == 4 and r.action_id is not None
    again = cur.set_metadata(admin, vid, 1, {"speed": 55})
    assert again.changed == 0 and again.action_id is None  # same value: nothing to write or undo
    got = cur.image_curation(admin, vid, 1)
    assert got.tags == ["car", "rainy day"]
    assert got.metadata == {"weather": "rain", "speed": 55, "ratio": 0.5, "reviewed": True}
    assert isinstance(got.metadata["reviewed"], bool)
    cur.remove_tags(admin, vid, 1, "car")
    cur.delete_metadata(admin, vid, 1, ["speed", "ratio"])
    cur.add_tags(admin, vid, 1, "car")  # back again
    cur.add_tags(admin, vid, 1, "car")  # already there: nothing written
    got = cur.image_curation(admin, vid, 1)
    assert got.tags == ["car", "rainy day"] and got.metadata == {"weather": "rain", "reviewed": True}
    with cur.app.catalog.session() as s:  # the catalog's op log folds to the same state, one op per change
        assert {t: ids.tolist() for t, ids in store.tag_state(s, vid).items()} == {"car": [1], "rainy day": [1]}
        assert [(c.tag, c.present, c.ids.tolist()) for c in store.tag_ops_since(s, vid, 0)] == [
            ("car", True, [1]), ("rainy day", True, [1]), ("car", False, [1]), ("car", True, [1])]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c, a, v: c.add_tags(a, v, 999, "x"), "1 image ids are not in version"),
        (lambda c, a, v: c.add_tags(a, v, 1, "  "), "non-empty"),
        (lambda c, a, v: c.set_metadata(a, v, 1, {"bad key": 1}), "metadata key 'bad key'"),
        (lambda c, a, v: c.set_metadata(a, v, 1, {"k": float("nan")}), "finite"),
        (lambda c, a, v: c.set_metadata(a, v, 1, {"k": None}), "expected text, a number or true/false"),
        (lambda c, a, v: c.set_metadata(a, v, 1, {"k": [1]}), "expected text"),
        (lambda c, a, v: c.bulk_edit(a, v, BulkEdit.add_tag("x")), "either image_ids or a query"),
        (lambda c, a, v: c.bulk_edit(a, v, BulkEdit("rename", tag="x"), image_ids=[1]), "expected add_tag"),
        (lambda c, a, v: c.bulk_edit(a, v, BulkEdit.add_tag("x"), query="widht>3"), "unknown field"),
        (lambda c, a, v: c.search_images(a, 12345, ""), "dataset version 12345 not found"),
    ],
)
def test_bad_edits_are_refused_clearly(cur, admin, vid, call, message):
    with pytest.raises((InvalidRequest, NotFound), match=message):
        call(cur, admin, vid)
    assert cur.curation_seq(admin, vid) == 0  # nothing was written


def test_bulk_by_query_and_by_ids_then_undo(cur, admin, vid):
    cur.add_tags(admin, vid, 1, "big")  # already tagged: the bulk edit must not take it away on undo
    cur.set_metadata(admin, vid, 2, {"weather": "sun"})
    r = cur.bulk_edit(admin, vid, BulkEdit.add_tag("big"), query="width>=1280")
    assert (r.images, r.changed) == (4, 3)  # images 1, 3, 6, 7; 1 had the tag already
    assert cur.search_images(admin, vid, "tag:big", order_by="image_id").image_ids == [1, 3, 6, 7]
    m = cur.bulk_edit(admin, vid, BulkEdit.set_key("weather", "rain"), image_ids=[1, 2, 3])
    assert m.changed == 3
    assert cur.search_images(admin, vid, "metadata.weather:rain", order_by="image_id").image_ids == [1, 2, 3]

    u = cur.undo_last(admin, vid)  # the metadata edit: image 2 gets "sun" back, 1 and 3 lose the key
    assert (u.kind, u.restored, u.skipped) == ("bulk.set_key", 3, 0)
    assert cur.image_curation(admin, vid, 2).metadata == {"weather": "sun"}
    assert cur.image_curation(admin, vid, 1).metadata == {}
    u = cur.undo_last(admin, vid)  # the tag edit: 1 keeps its own tag
    assert (u.kind, u.restored) == ("bulk.add_tag", 3)
    assert cur.search_images(admin, vid, "tag:big").image_ids == [1]
    cur.undo_last(admin, vid)  # the single set_metadata
    cur.undo_last(admin, vid)  # the single add_tags
    assert cur.search_images(admin, vid, "tags:any OR has:metadata.weather").total == 0
    with pytest.raises(NotFound, match="nothing of yours to undo"):
        cur.undo_last(admin, vid)


def test_undo_keeps_rows_someone_changed_since(api, cur, admin, vid):
    editor = make_user(api, "editor")
    with api.app.catalog.session() as s:
        s.get(DatasetGroup, 1).owner_id = editor.id  # the editor owns the group; admin edits as admin
    cur.bulk_edit(admin, vid, BulkEdit.set_key("weather", "rain"), image_ids=[1, 2, 3])
    cur.set_metadata(editor, vid, 2, {"weather": "fog"})
    u = cur.undo_last(admin, vid)
    assert (u.restored, u.skipped) == (2, 1)
    assert cur.image_curation(admin, vid, 2).metadata == {"weather": "fog"}
    assert cur.search_images(admin, vid, "has:metadata.weather").image_ids == [2]


def test_more_than_1000_images_need_confirm(api, cur, admin):
    images = [(i, f"img/{i:05d}.jpg", 640, 480, "train", None) for i in range(1, 1202)]
    vid = make_version(api, admin.id, group="big", images=images, anns=[])
    with pytest.raises(ConfirmationRequired, match=r"would change 1,201 images .*confirm=True") as info:
        cur.bulk_edit(admin, vid, BulkEdit.add_tag("night"), query="")
    assert info.value.count == 1201 and cur.search_images(admin, vid, "tag:night").total == 0
    ids = list(range(1, 1001))
    assert cur.bulk_edit(admin, vid, BulkEdit.add_tag("night"), image_ids=ids).changed == 1000  # 1,000 is fine
    r = cur.bulk_edit(admin, vid, BulkEdit.set_key("weather", "rain"), query="", confirm=True)
    assert (r.images, r.changed) == (1201, 1201)
    page = cur.search_images(admin, vid, "tag:night metadata.weather:rain", limit=5)
    assert page.total == 1000 and page.image_ids == [1, 2, 3, 4, 5]
    assert cur.undo_last(admin, vid).restored == 1201
    assert cur.search_images(admin, vid, "has:metadata.weather").total == 0


def test_permissions_reader_cannot_edit_stranger_cannot_see(api, cur, admin):
    vid = make_version(api, admin.id, group="shared", visibility="public")
    private = make_version(api, admin.id, group="private")
    viewer = make_user(api, "viewer")
    cur.add_tags(admin, vid, 1, "car")
    assert cur.search_images(viewer, vid, "tag:car").image_ids == [1]
    assert cur.search_facets(viewer, vid, "").total == 10
    edits = [
        lambda: cur.add_tags(viewer, vid, 1, "x"),
        lambda: cur.remove_tags(viewer, vid, 1, "car"),
        lambda: cur.set_metadata(viewer, vid, 1, {"k": 1}),
        lambda: cur.delete_metadata(viewer, vid, 1, "k"),
        lambda: cur.bulk_edit(viewer, vid, BulkEdit.add_tag("x"), query=""),
        lambda: cur.undo_last(viewer, vid),
        lambda: cur.import_metadata_csv(viewer, vid, "file_name,key,value\ntrain/day_001.jpg,k,1\n"),
    ]
    for edit in edits:
        with pytest.raises(PermissionDenied, match="'shared'"):
            edit()
    with pytest.raises(NotFound):
        cur.search_images(viewer, private, "")
    with pytest.raises(NotFound):
        cur.add_tags(viewer, private, 1, "x")
    assert cur.image_curation(admin, vid, 1).tags == ["car"]


def test_csv_long_and_wide_with_mismatches(cur, admin, vid, tmp_path):
    long = tmp_path / "long.csv"
    long.write_text(
        "file_name,key,value\n"
        "train/day_001.jpg,weather,rain\n"
        "train/day_001.jpg,speed,55\n"
        "night_002.jpg,speed,30.5\n"  # base name only: unique, matches train/night_002.jpg
        "nope/missing.jpg,weather,sun\n"
        "val/night_003.png,weather,\n"  # empty: skipped
        "val/night_003.png,reviewed,TRUE\n"
    )
    rep = cur.import_metadata_csv(admin, vid, long)
    assert (rep.layout, rep.rows, rep.matched_rows, rep.images) == ("long", 6, 4, 3)
    assert rep.unmatched == [(5, "nope/missing.jpg")] and rep.empty_values == 1
    assert rep.key_types == {"reviewed": "boolean", "speed": "number", "weather": "string"}
    assert "1 rows match no image: line 5: 'nope/missing.jpg'" in rep.render_text()
    assert cur.search_images(admin, vid, "metadata.speed>30", order_by="image_id").image_ids == [1, 2]
    assert cur.image_curation(admin, vid, 3).metadata == {"reviewed": True}

    wide = "file_name,camera,zone,tags\ntrain/day_001.jpg,cam-1,7,day;car\nghost.jpg,cam-9,1,\nval/rain_004.jpg,cam-2,,\n"
    rep = cur.import_metadata_csv(admin, vid, wide.encode())
    assert (rep.layout, rep.matched_rows, rep.unmatched) == ("wide", 2, [(3, "ghost.jpg")])
    assert rep.tags_changed == 2 and rep.key_types == {"camera": "string", "zone": "number"}
    assert cur.search_images(admin, vid, "tag:day metadata.zone:7 metadata.camera:cam-1").image_ids == [1]
    assert cur.undo_last(admin, vid).restored == 5  # the whole CSV import is one undoable edit
    assert cur.search_images(admin, vid, "tag:day OR has:metadata.camera").total == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("name,key,value\n", "first column must be file_name"),
        ("file_name,key,value\na.jpg,bad key,1\n", "line 2: metadata key 'bad key'"),
        ("file_name,key,value,kind\na.jpg,k,1,float\n", "line 2: kind 'float'"),
        ("file_name,key,value,kind\na.jpg,k,abc,number\n", "'abc' is not a number"),
        ("file_name,k=1\n", "metadata key 'k=1'"),
        ("file_name,key,value\na.jpg,k,1,extra\n", "line 2: 4 fields"),
    ],
)
def test_bad_csv_changes_nothing(cur, admin, vid, text, message):
    with pytest.raises(InvalidRequest, match=message):
        cur.import_metadata_csv(admin, vid, text.encode())
    assert cur.curation_seq(admin, vid) == 0


def test_csv_export_reads_back_into_another_version(api, cur, admin, vid, tmp_path):
    cur.add_tags(admin, vid, 1, ["car", "a,b \"quoted\""])
    cur.set_metadata(admin, vid, 1, {"speed": 55, "ratio": 0.1, "code": "007", "ok": False})
    cur.set_metadata(admin, vid, 2, {"code": "x"})
    out = cur.export_curation_csv(admin, vid, tmp_path / "out" / "curation.csv")
    rows = list(csv.DictReader(out.open()))
    assert {(r["file_name"], r["kind"], r["key"], r["value"]) for r in rows} == {
        ("train/day_001.jpg", "tag", "car", ""), ("train/day_001.jpg", "tag", 'a,b "quoted"', ""),
        ("train/day_001.jpg", "number", "speed", "55"), ("train/day_001.jpg", "number", "ratio", "0.1"),
        ("train/day_001.jpg", "string", "code", "007"), ("train/day_001.jpg", "boolean", "ok", "false"),
        ("train/night_002.jpg", "string", "code", "x"),
    }
    copy = make_version(api, admin.id, group="copy")
    rep = cur.import_metadata_csv(admin, copy, out)
    assert rep.unmatched == [] and rep.matched_rows == 7
    for image_id in (1, 2):
        assert cur.image_curation(admin, copy, image_id).tags == cur.image_curation(admin, vid, image_id).tags
        assert cur.image_curation(admin, copy, image_id).metadata == cur.image_curation(admin, vid, image_id).metadata


def test_every_edit_is_in_the_audit_log(api, cur, admin, vid):
    cur.add_tags(admin, vid, 1, "car")
    cur.bulk_edit(admin, vid, BulkEdit.add_tag("wide"), query="width>1000")
    cur.undo_last(admin, vid)
    with api.app.catalog.session() as s:
        rows = s.scalars(select(AuditEntry).where(AuditEntry.action.like("curation.%")).order_by(AuditEntry.id)).all()
        got = [(e.action, e.user_id, e.target_id, e.details.get("rows_changed", e.details.get("restored")))
               for e in rows]
    assert got == [("curation.tag.add", admin.id, vid, 1), ("curation.bulk.add_tag", admin.id, vid, 6),
                   ("curation.undo", admin.id, vid, 6)]
    assert rows[1].details["query"] == "width>1000" and rows[1].details["tag"] == "wide"
