"""Export jobs: several tasks, resume after a killed worker without duplicates, clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cvat_fake.fixtures import fake_cvat, make_fake  # noqa: F401
from test_cvat_sync_support import capi, connect, import_version, kill_when, sample_export  # noqa: F401

from dsgen_core.cvat import CvatAuthError, CvatTaskDeleted, CvatWrongUrl
from dsgen_core.cvat_sync.records import ExportRequest
from dsgen_core.errors import NotFound

ROOT = Path(__file__).resolve().parent.parent


def _request(conn, vid, **kw):  # noqa: ANN001, ANN003
    return ExportRequest(version_id=vid, connection=conn, project=kw.pop("project", "p"), task_name="part",
                         **{"max_images_per_task": 5, "segment_size": 3, **kw})


def test_large_subset_becomes_several_tasks_with_filter(capi, fake_cvat, sample_export):  # noqa: F811
    admin = capi.default_actor
    vid = import_version(capi, admin, sample_export)
    for i in range(1, 12):
        capi.add_tags(admin, vid, i, ["pick"])
    conn = connect(capi, admin, fake_cvat)
    started = capi.start_cvat_export(admin, _request(conn, vid, query="tag:pick"))
    assert (started.num_images, started.num_tasks) == (11, 3)
    info = capi.run_job_here(admin, started.job_id)
    assert info.status == "SUCCEEDED", info.error
    for stage in ("writing COCO", "creating tasks", "uploading images (task 3/3)", "waiting for CVAT",
                  "uploading annotations (task 3/3)"):  # tasks 1-2 finish in the background
        assert f"stage: {stage}" in info.log
    assert "annotations imported (task 1/3)" in info.log and "annotations imported (task 2/3)" in info.log
    export = capi.get_cvat_export(admin, started.export_id)
    assert export.query == "tag:pick" and export.curation_seq > 0
    assert [t.num_images for t in export.tasks] == [5, 5, 1]
    assert [t["size"] for t in fake_cvat.tasks()] == [5, 5, 1]
    assert [t["segment_size"] for t in fake_cvat.tasks()] == [3, 3, 3]
    assert [t["name"] for t in fake_cvat.tasks()] == ["part-001", "part-002", "part-003"]
    assert info.result["links"] == export.links
    # pulling all three tasks at once: no change
    preview = capi.preview_pull(admin, [t.task_id for t in export.tasks], into="cars")
    assert preview.diff.is_zero and preview.diff.images_matched == 11


def _worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dsgen_core.cli", "worker"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_worker_killed_mid_upload_resumes_same_tasks(capi, make_fake, sample_export, monkeypatch):  # noqa: F811
    monkeypatch.setenv("DSGEN_CVAT_MAX_FILES", "2")
    monkeypatch.setenv("DSGEN_CVAT_UPLOAD_CONNECTIONS", "1")  # batches one after another: a window to kill in
    admin = capi.default_actor
    vid = import_version(capi, admin, sample_export)
    fake = make_fake(max_files_per_request=2)  # several requests per task
    slow = fake.fail(method="POST", path=r"/data/?$", delay=0.5, times=-1)  # uploads take a while
    conn = connect(capi, admin, fake)
    started = capi.start_cvat_export(admin, _request(conn, vid, max_images_per_task=6))
    env = {**os.environ}
    def second_upload() -> bool:
        info = capi.get_job(admin, started.job_id)
        assert info.status in ("QUEUED", "RUNNING"), info.error
        return "uploading images (task 2/2)" in info.stage and info.processed >= 1

    kill_when(_worker(env), second_upload, "the second upload", timeout=30)
    assert len(fake.tasks()) == 2 and fake.tasks()[1]["size"] == 0  # killed mid-upload of task 2
    slow.times = 0
    worker = _worker(env)
    try:
        deadline = time.monotonic() + 30
        while capi.get_job(admin, started.job_id).status not in ("SUCCEEDED", "FAILED") and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        worker.terminate()
        worker.wait(timeout=10)
    info = capi.get_job(admin, started.job_id)
    assert info.status == "SUCCEEDED", (info.error, info.log)
    assert [t["size"] for t in fake.tasks()] == [6, 6]  # the same two tasks, no duplicate
    assert len(fake.requests("POST", r"^/api/tasks/?$")) == 2
    export = capi.get_cvat_export(admin, started.export_id)
    assert [t.state for t in export.tasks] == ["done", "done"] and export.status == "DONE"
    assert capi.preview_pull(admin, [t.task_id for t in export.tasks], into="cars").diff.is_zero


def _most_at_once(requests: list) -> int:  # noqa: ANN001
    """The most of these recorded requests that were in the fake at the same moment."""
    return max(sum(1 for r in requests if r.started <= x.started < (r.ended or float("inf"))) for x in requests)


def test_tasks_overlap_and_resume_after_one_task_fails(capi, make_fake, sample_export, monkeypatch):  # noqa: F811
    """Batches of a task go up on several connections, CVAT imports task 1 while task 2's images upload, and a
    failure in a background finisher (task 2's import) fails the job cleanly; the resume creates nothing twice."""
    monkeypatch.setenv("DSGEN_CVAT_MAX_FILES", "1")
    admin = capi.default_actor
    vid = import_version(capi, admin, sample_export)
    fake = make_fake(max_files_per_request=1)
    fake.fail(method="POST", path=r"^/api/tasks/2/data/$", delay=0.15, times=-1)  # task 2's upload is slow
    broken = fake.fail(path=r"^/api/tasks/2/annotations", status=500, times=-1)  # PUT before 2.38
    conn = connect(capi, admin, fake)
    started = capi.start_cvat_export(admin, _request(conn, vid, max_images_per_task=4))
    info = capi.run_job_here(admin, started.job_id)
    assert info.status == "FAILED" and "CvatUnavailable" in info.error and broken.hits == 1
    batches = [r for r in fake.requests("POST", r"^/api/tasks/2/data/$") if "Upload-Multiple" in r.headers]
    assert len(batches) == 4 and _most_at_once(batches) >= 2  # one task's batches in flight together
    task1_import = fake.requests(None, r"^/api/tasks/1/annotations")[0]
    assert task1_import.started < max(r.ended for r in batches)  # task 1 imported while task 2 uploaded
    export = capi.get_cvat_export(admin, started.export_id)
    assert export.status == "FAILED" and [t.state for t in export.tasks][:2] == ["done", "data"]
    assert all(t.task_id is not None for t in export.tasks)

    fake.clear_faults()
    again = capi.resume_cvat_export(admin, started.export_id)
    assert capi.run_job_here(admin, again.job_id).status == "SUCCEEDED"
    assert [t["size"] for t in fake.tasks()] == [4, 4, 4] and len(fake.requests("POST", r"^/api/tasks/?$")) == 3
    starts = [r.path for r in fake.requests("POST", r"/data/$") if "Upload-Start" in r.headers]
    assert sorted(starts) == ["/api/tasks/1/data/", "/api/tasks/2/data/", "/api/tasks/3/data/"]  # none sent twice
    export = capi.get_cvat_export(admin, started.export_id)
    assert [t.state for t in export.tasks] == ["done"] * 3 and export.status == "DONE"
    assert capi.preview_pull(admin, [t.task_id for t in export.tasks], into="cars").diff.is_zero


def test_failed_export_resumes_without_duplicates(capi, fake_cvat, sample_export):  # noqa: F811
    admin = capi.default_actor
    vid = import_version(capi, admin, sample_export)
    conn = connect(capi, admin, fake_cvat)
    fake_cvat.fail(method="POST", path=r"/api/tasks/\d+/data", status=503, times=-1)
    started = capi.start_cvat_export(admin, _request(conn, vid, max_images_per_task=12))
    info = capi.run_job_here(admin, started.job_id)
    assert info.status == "FAILED" and "CvatUnavailable" in info.error
    export = capi.get_cvat_export(admin, started.export_id)
    assert export.status == "FAILED" and export.tasks[0].task_id is not None and "503" in export.error
    fake_cvat.clear_faults()
    again = capi.resume_cvat_export(admin, started.export_id)
    assert capi.run_job_here(admin, again.job_id).status == "SUCCEEDED"
    assert len(fake_cvat.tasks()) == 1 and fake_cvat.tasks()[0]["size"] == 12
    assert capi.get_cvat_export(admin, started.export_id).status == "DONE"


def test_clear_errors(capi, make_fake, sample_export, tmp_path):  # noqa: F811
    admin = capi.default_actor
    vid = import_version(capi, admin, sample_export)
    fake = make_fake()
    with pytest.raises(CvatAuthError, match="wrong username or password"):
        capi.add_cvat_connection(admin, "bad", fake.url, username=fake.username, secret="nope")
    other = make_fake()
    other.fail(path=r"/api/server/about", status=404, times=-1)
    with pytest.raises(CvatWrongUrl, match="does not look like a CVAT server"):
        capi.add_cvat_connection(admin, "wrong", other.url, username="u", secret="p")
    # saved without checking: the job reports the problem
    bad = capi.add_cvat_connection(admin, "bad", fake.url, username=fake.username, secret="nope", check=False)
    info = capi.run_job_here(admin, capi.start_cvat_export(admin, _request(bad.id, vid)).job_id)
    assert info.status == "FAILED" and "CvatAuthError" in info.error and "nope" not in info.log + info.error
    # CVAT down
    down = make_fake()
    conn_down = connect(capi, admin, down, "down")
    down.stop()
    info = capi.run_job_here(admin, capi.start_cvat_export(admin, _request(conn_down, vid)).job_id)
    assert info.status == "FAILED" and "CvatUnavailable" in info.error
    # an existing project whose labels do not match
    good = connect(capi, admin, fake, "good")
    from dsgen_core.cvat import LabelSpec
    from dsgen_core.cvat_sync.connections import open_client

    with open_client(fake.url, None, "login", fake.username, fake.password) as c:
        c.create_project("theirs", [LabelSpec("zebra")])
    info = capi.run_job_here(admin, capi.start_cvat_export(admin, _request(good, vid, project="theirs")).job_id)
    assert info.status == "FAILED" and "CvatLabelMismatch" in info.error and "is missing" in info.error
    # a task deleted in CVAT before the pull-back
    started = capi.start_cvat_export(admin, _request(good, vid, max_images_per_task=12, project="ours"))
    assert capi.run_job_here(admin, started.job_id).status == "SUCCEEDED"
    tid = capi.get_cvat_export(admin, started.export_id).tasks[0].task_id
    fake.delete_task(tid)
    with pytest.raises(CvatTaskDeleted, match=f"task {tid} does not exist"):
        capi.preview_pull(admin, tid, into="cars")
    with pytest.raises(NotFound, match="not exported by dsgen"):
        capi.preview_pull(admin, 999, into="cars")
    # secrets appear nowhere a user can read
    shown = repr(capi.list_cvat_connections(admin)) + repr(capi.list_cvat_exports(admin)) + repr(
        [e.details for e in capi.list_audit(admin)])
    assert fake.password not in shown and "nope" not in shown


def test_permissions_and_own_connections(capi, fake_cvat, sample_export):  # noqa: F811
    admin = capi.default_actor
    vid = import_version(capi, admin, sample_export)
    capi.create_user(admin, "bob", password="bob-password-1")
    bob = capi.actor("bob")
    conn = connect(capi, admin, fake_cvat)
    assert capi.list_cvat_connections(bob) == []
    with pytest.raises(NotFound):
        capi.start_cvat_export(bob, _request(conn, vid))  # cannot read the version
    capi.grant(admin, "cars", "bob", "viewer")
    with pytest.raises(NotFound, match="CVAT connection"):
        capi.start_cvat_export(bob, _request(conn, vid))  # admin's connection is not bob's
    bob_conn = connect(capi, bob, fake_cvat, "mine")
    started = capi.start_cvat_export(bob, _request(bob_conn, vid, max_images_per_task=12))
    assert capi.run_job_here(bob, started.job_id).status == "SUCCEEDED"
    tid = capi.get_cvat_export(bob, started.export_id).tasks[0].task_id
    from dsgen_core.errors import PermissionDenied

    with pytest.raises((PermissionDenied, NotFound)):
        capi.preview_pull(bob, tid, into="cars")  # a viewer may not pull into the group
    capi.grant(admin, "cars", "bob", "editor")
    assert capi.preview_pull(bob, tid, into="cars").diff.is_zero


def test_an_export_job_asks_cvat_only_what_it_does_not_know(capi, fake_cvat, sample_export):  # noqa: F811
    """Before the first image byte: no second login (this process's token is reused while CVAT takes it), the
    project's labels once, no re-read of the task just created."""
    admin = capi.default_actor
    vid = import_version(capi, admin, sample_export)
    conn = connect(capi, admin, fake_cvat)  # logs in once to check the connection
    for k, project in enumerate(("new-project", "new-project")):  # the second export finds the project
        fake_cvat.log.clear()
        started = capi.start_cvat_export(admin, _request(conn, vid, project=project, max_images_per_task=12))
        assert capi.run_job_here(admin, started.job_id).status == "SUCCEEDED"
        first_data = next(i for i, r in enumerate(fake_cvat.log) if r.path.endswith("/data") or r.path.endswith("/data/"))
        before = [(r.method, r.path) for r in fake_cvat.log[:first_data]]
        assert ("POST", "/api/auth/login") not in before
        assert [p for m, p in before if p == "/api/labels"] == ([] if k == 0 else ["/api/labels"])
        assert not [p for m, p in before if m == "GET" and p.startswith("/api/tasks/")], before
        assert before[:2] == [("GET", "/api/server/about"), ("GET", "/api/users/self")]  # version; token checked
    fake_cvat.state.tokens.clear()  # CVAT forgot the token (e.g. the user logged out everywhere): log in again
    started = capi.start_cvat_export(admin, _request(conn, vid, project="new-project", max_images_per_task=12))
    assert capi.run_job_here(admin, started.job_id).status == "SUCCEEDED"
    assert len(fake_cvat.requests("POST", "/api/auth/login")) == 1


def test_a_lost_create_answer_or_id_record_finds_the_task_again(capi, fake_cvat, sample_export):  # noqa: F811
    """The "creating" mark is committed before CVAT is asked: a task whose create answer was lost, or whose id
    (written behind) never reached the catalog although its images did reach CVAT, is found by name on resume."""
    from dsgen_core.catalog.cvat_models import CvatExport, CvatExportTask

    admin = capi.default_actor
    vid = import_version(capi, admin, sample_export)
    conn = connect(capi, admin, fake_cvat)
    fake_cvat.fail(method="POST", path=r"^/api/tasks/?$", drop=True, after=True, times=1)  # created, answer lost
    started = capi.start_cvat_export(admin, _request(conn, vid, max_images_per_task=12))
    info = capi.run_job_here(admin, started.job_id)
    assert info.status == "FAILED" and "outcome is unknown" in info.error
    assert [t.state for t in capi.get_cvat_export(admin, started.export_id).tasks] == ["creating"]
    again = capi.resume_cvat_export(admin, started.export_id)
    info = capi.run_job_here(admin, again.job_id)
    assert info.status == "SUCCEEDED" and "from an earlier attempt" in info.log
    assert [t["size"] for t in fake_cvat.tasks()] == [12]  # the same task, no second one
    with capi.app.catalog.session() as s:  # as if the worker died before its queued id write: data in, id lost
        (row,) = s.query(CvatExportTask).filter_by(export_id=started.export_id).all()
        row.state, row.task_id, row.url, row.rq_id = "creating", None, None, None
        s.get(CvatExport, started.export_id).status = "FAILED"
    info = capi.run_job_here(admin, capi.resume_cvat_export(admin, started.export_id).job_id)
    assert info.status == "SUCCEEDED" and "from an earlier attempt" in info.log, info.log
    assert len(fake_cvat.tasks()) == 1 and capi.get_cvat_export(admin, started.export_id).tasks[0].state == "done"
    assert len([r for r in fake_cvat.requests("POST", r"/data/?$") if r.files]) == 1  # the images went up once
