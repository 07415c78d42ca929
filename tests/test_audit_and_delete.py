"""The audit log (who did what, filters, visibility, CSV) and delete: soft first, restore, purge."""

from __future__ import annotations

import csv
import io

import pytest
from helpers import open_import_root, simple_export

from dsgen_core.api import ImportRequest
from dsgen_core.errors import NotFound, PermissionDenied

PW = "a-long-test-password"


def do_import(api, actor, path, group):
    if not actor.is_admin:
        open_import_root(api, path, users=[actor.username])
    started = api.start_import(actor, ImportRequest(path=str(path), group=group))
    assert api.run_job_here(actor, started.job_id).status == "SUCCEEDED"
    return started


def test_audit_records_logins_imports_grants_exports_and_deletions(api, admin, tmp_path):
    api.create_user(admin, "ann", password=PW)
    api.create_user(admin, "ben", password=PW)
    ann = api.login("ann", PW).actor
    started = do_import(api, ann, simple_export(tmp_path / "e"), "g")
    api.grant(ann, "g", "ben", "viewer")
    api.export_coco(ann, started.version_id, tmp_path / "out.json")
    api.delete_group(ann, "g")
    actions = [e.action for e in api.list_audit(ann)]
    for a in ("login", "group.create", "import.start", "group.grant", "export.coco", "group.delete"):
        assert a in actions, actions
    grant = api.list_audit(ann, action="group.grant")[0]
    assert grant.username == "ann" and grant.details == {"username": "ben", "role": "viewer"}
    # filters
    assert {e.action for e in api.list_audit(admin, username="ann", action="group.")} == {
        "group.create", "group.grant", "group.delete"}
    assert all(e.target_type == "version" for e in api.list_audit(admin, target_type="version"))


def test_users_see_only_their_own_and_their_groups_audit_entries(api, admin, tmp_path):
    api.create_user(admin, "ann", password=PW)
    api.create_user(admin, "ben", password=PW)
    ann, ben = api.actor("ann"), api.actor("ben")
    do_import(api, ann, simple_export(tmp_path / "e"), "anns")
    api.create_org(admin, "secret-org")
    ben_sees = api.list_audit(ben)
    assert ben_sees == []  # nothing of ann's group, nothing of the admin's
    assert all(e.username == "ann" for e in api.list_audit(ann))
    assert any(e.action == "org.create" for e in api.list_audit(admin))


def test_audit_csv_has_stable_columns_and_one_row_per_entry(api, admin, tmp_path):
    do_import(api, admin, simple_export(tmp_path / "e"), "g")
    text = api.audit_csv(admin, action="import.start")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["id", "at", "username", "action", "target_type", "target_id", "details"]
    assert [r[3] for r in rows[1:]] == ["import.start"] and '"split":"train"' in rows[1][6]


def test_soft_delete_hides_restore_brings_back_purge_frees_only_unshared_storage(api, admin, tmp_path):
    export = simple_export(tmp_path / "e", n=3)
    keep = do_import(api, admin, export, "keep")  # shares all image blobs with "gone"
    gone = do_import(api, admin, export, "gone")
    other = simple_export(tmp_path / "o", n=2)
    # a third image set only "gone" uses: overwrite the pixels so the blobs differ
    from helpers import jpeg
    for i, p in enumerate(sorted((other / "images").iterdir())):
        jpeg(p, 64, 48, seed=100 + i)
    gone2 = api.start_import(admin, ImportRequest(path=str(other), group="gone", split="val"))
    assert api.run_job_here(admin, gone2.job_id).status == "SUCCEEDED"
    blobs = api.app.settings.storage_root / "blobs"
    count_blobs = lambda: sum(1 for p in blobs.rglob("*") if p.is_file())  # noqa: E731
    assert count_blobs() == 5
    for job in api.list_jobs(admin):  # the thumbnail jobs the imports queued
        if job.status == "QUEUED":
            assert api.run_job_here(admin, job.id).status == "SUCCEEDED"
    thumbs = api.app.settings.thumbs_root
    count_thumbs = lambda: sum(1 for _ in thumbs.rglob("*.jpg"))  # noqa: E731
    assert count_thumbs() == 5
    with pytest.raises(NotFound):
        api.purge_group(admin, gone.group_id)  # purge only after a soft delete
    api.delete_group(admin, "gone")
    assert [g.name for g in api.list_groups(admin)] == ["keep"]
    with pytest.raises(NotFound):
        api.get_version(admin, gone.version_id)
    assert [g.name for g in api.list_deleted_groups(admin)] == ["gone"]
    api.restore_group(admin, gone.group_id)
    assert api.get_version(admin, gone.version_id).status == "READY"
    api.delete_group(admin, "gone")
    result = api.purge_group(admin, gone.group_id)
    assert result == {"versions": 2, "blobs": 2}
    assert count_blobs() == 3  # the shared ones stay for "keep"
    assert count_thumbs() == 3
    assert api.get_version(admin, keep.version_id).status == "READY"
    assert api.class_counts(admin, keep.version_id)
    assert not (api.app.settings.lake_root / f"g{gone.group_id}").exists() or not any(
        (api.app.settings.lake_root / f"g{gone.group_id}").iterdir())


def test_only_owners_delete_and_restore(api, admin, tmp_path):
    api.create_user(admin, "ann", password=PW)
    api.create_user(admin, "ed", password=PW)
    ann, ed = api.actor("ann"), api.actor("ed")
    started = do_import(api, ann, simple_export(tmp_path / "e"), "g")
    api.grant(ann, "g", "ed", "editor")
    with pytest.raises(PermissionDenied, match="needs owner"):
        api.delete_group(ed, "g")
    with pytest.raises(PermissionDenied, match="needs owner"):
        api.delete_version(ed, started.version_id)
    api.delete_version(ann, started.version_id)
    with pytest.raises(NotFound):
        api.get_version(ann, started.version_id)
    assert [v.id for v in api.list_deleted_versions(ann, "g")] == [started.version_id]
    with pytest.raises(PermissionDenied):
        api.list_deleted_versions(ed, "g")
    api.restore_version(ann, started.version_id)
    assert api.get_version(ann, started.version_id).status == "READY"
