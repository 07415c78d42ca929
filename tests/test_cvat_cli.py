"""`dsgen cvat …` as a user runs it: real CLI subprocesses against the fake CVAT over HTTP.

Connections (the secret is never printed), export of a DSL-filtered subset, the exports list,
resume of a failed export, pull-back into a new version, and bad input with clear messages and
exit codes. No secret (CVAT password, dsgen token) may appear in any output.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cvat_fake.fixtures import fake_cvat, make_fake  # noqa: F401
from cvat_fake.server import free_port
from test_cvat_sync_support import (  # noqa: F401
    capi,
    import_on_share,
    import_version,
    kill_when,
    oriented_export,
    sample_export,
)

ROOT = Path(__file__).resolve().parent.parent


class Cli:
    """Runs `python -m dsgen_core.cli …` in the test's installation and collects every output for leak checks."""

    def __init__(self, secrets: list[str]):
        self.secrets = secrets
        self.outputs: list[str] = []

    def __call__(self, *args: str, token: str | None = None, stdin: str | None = None,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        full = dict(os.environ, **(env or {}))
        full.pop("DSGEN_TOKEN", None)
        full.pop("DSGEN_CVAT_SECRET", None)
        if env and "DSGEN_CVAT_SECRET" in env:
            full["DSGEN_CVAT_SECRET"] = env["DSGEN_CVAT_SECRET"]
        if token:
            full["DSGEN_TOKEN"] = token
        # a new session has no controlling terminal, so a prompt reads stdin (getpass would open /dev/tty)
        proc = subprocess.run([sys.executable, "-m", "dsgen_core.cli", *args], cwd=ROOT, env=full, input=stdin,
                              capture_output=True, text=True, timeout=180, start_new_session=True)
        self.outputs.append(proc.stdout + proc.stderr)
        for secret in self.secrets:
            assert secret not in proc.stdout + proc.stderr, f"a secret leaked from `dsgen {' '.join(args)}`"
        return proc

    def ok(self, *args: str, **kw: object) -> subprocess.CompletedProcess:
        proc = self(*args, **kw)  # type: ignore[arg-type]
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
        return proc

    def fails(self, *args: str, match: str, code: int = 1, **kw: object) -> subprocess.CompletedProcess:
        """A clear one-line error (no traceback) containing `match`, and the given exit code."""
        proc = self(*args, **kw)  # type: ignore[arg-type]
        assert proc.returncode == code, (args, proc.returncode, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr, proc.stderr
        assert match in proc.stderr, (match, proc.stderr)
        return proc


@pytest.fixture
def cli(capi, fake_cvat, tmp_path, monkeypatch):  # noqa: F811
    """The CLI of an installation with a CVAT user; the operator (no token) acts as the first admin."""
    monkeypatch.setenv("DSGEN_TOKEN_FILE", str(tmp_path / "no-tokens.json"))
    return Cli([fake_cvat.password, "wrong-Passw0rd!"])


def _connect(cli: Cli, fake, name: str = "fake", **kw: object) -> subprocess.CompletedProcess:  # noqa: ANN001
    return cli.ok("cvat", "connect", name, fake.url, "--username", fake.username,
                  env={"DSGEN_CVAT_SECRET": fake.password}, **kw)


def _task_ids(stdout: str) -> list[int]:
    return [int(line.split()[1].rstrip(":")) for line in stdout.splitlines() if line.startswith("task ")]


def test_connect_list_and_connection_errors(cli, capi, make_fake):  # noqa: F811
    fake = make_fake("2.72.0")
    out = _connect(cli, fake).stdout
    assert "saved CVAT connection" in out and fake.url in out
    # the secret from the prompt (no $DSGEN_CVAT_SECRET): read from stdin, never echoed
    prompted = cli.ok("cvat", "connect", "prompted", fake.url, "--username", fake.username,
                      stdin=fake.password + "\n")
    assert "saved CVAT connection" in prompted.stdout
    listed = cli.ok("cvat", "connections").stdout
    assert "fake" in listed and "prompted" in listed and "[login]" in listed and fake.url in listed
    # bad credentials, wrong URL, CVAT down, a duplicate name: clear errors, nothing saved
    cli.fails("cvat", "connect", "bad", fake.url, "--username", fake.username,
              env={"DSGEN_CVAT_SECRET": "wrong-Passw0rd!"}, match="wrong username or password")
    not_cvat = make_fake()
    not_cvat.fail(path=r"/api/server/about", status=404, times=-1)
    cli.fails("cvat", "connect", "wrong", not_cvat.url, "--username", "u", env={"DSGEN_CVAT_SECRET": "x"},
              match="does not look like a CVAT server")
    cli.fails("cvat", "connect", "down", f"http://127.0.0.1:{free_port()}", "--username", "u",
              env={"DSGEN_CVAT_SECRET": "x"}, match="unavailable")
    cli.fails("cvat", "connect", "nourl", "ftp://example.org", "--username", "u", env={"DSGEN_CVAT_SECRET": "x"},
              match="expected http(s)://host[:port]")
    cli.fails("cvat", "connect", "fake", fake.url, "--username", fake.username,
              env={"DSGEN_CVAT_SECRET": fake.password}, match="already have a CVAT connection called 'fake'")
    cli.fails("cvat", "connect", "x", fake.url, "--auth", "magic", match="invalid choice", code=2)
    names = [c.name for c in capi.list_cvat_connections(capi.default_actor)]
    assert sorted(names) == ["fake", "prompted"]


def test_export_by_query_list_and_pull_back(cli, capi, fake_cvat, sample_export):  # noqa: F811
    admin = capi.default_actor
    vid = import_version(capi, admin, sample_export)
    for i in range(1, 8):
        capi.add_tags(admin, vid, i, ["relabel"])
    _connect(cli, fake_cvat)
    exported = cli.ok("cvat", "export", str(vid), "--query", "tag:relabel", "--connection", "fake",
                      "--project", "cars relabel", "--task-name", "batch", "--max-images", "4",
                      "--segment-size", "2", "--quality", "80")
    assert "7 images in 2 task(s)" in exported.stdout
    creating = [line for line in exported.stderr.replace("\r", "\n").splitlines() if line.startswith("creating tasks")]
    assert creating and "2/2" in creating[-1] and "task/s" in creating[-1] and "img" not in creating[-1]
    task_ids = _task_ids(exported.stdout)
    assert len(task_ids) == 2
    assert f"{fake_cvat.url}/tasks/{task_ids[0]}" in exported.stdout
    assert [(t["name"], t["size"], t["segment_size"], t["image_quality"]) for t in fake_cvat.tasks()] == [
        ("batch-001", 4, 2, 80), ("batch-002", 3, 2, 80)]
    assert all(t["shapes"] > 0 for t in fake_cvat.tasks())  # our annotations were pre-loaded

    listed = cli.ok("cvat", "exports").stdout
    assert "DONE" in listed and "7 images" in listed and "'tag:relabel'" in listed
    assert f"tasks: {', '.join(map(str, task_ids))}" in listed

    # someone relabels in CVAT: move a box; the dry run shows the diff and writes nothing
    shape = next(s for s in fake_cvat.shapes(task_ids[0]) if s.type == "rectangle")
    fake_cvat.move_shape(task_ids[0], shape.id, 7.5, -3.0)
    versions_before = len(capi.get_group(admin, "cars").versions)
    dry = cli.ok("cvat", "pull", str(task_ids[0]), f"{fake_cvat.url}/tasks/{task_ids[1]}", "--into", "cars",
                 "--dry-run")
    assert "7 matched of 7 in CVAT" in dry.stdout and "1 moved" in dry.stdout
    assert len(capi.get_group(admin, "cars").versions) == versions_before
    # answering "no" at the prompt writes nothing either
    declined = cli.ok("cvat", "pull", str(task_ids[0]), "--into", "cars", stdin="n\n")
    assert "nothing written" in declined.stdout
    assert len(capi.get_group(admin, "cars").versions) == versions_before

    pulled = cli.ok("cvat", "pull", str(task_ids[0]), str(task_ids[1]), "--into", "cars", "--yes")
    assert "1 moved" in pulled.stdout and "READY: cars/train v1.1.0" in pulled.stdout
    new_id = int(pulled.stdout.rsplit("version id ", 1)[1].split(")")[0])
    new = capi.get_version(admin, new_id)
    assert new.parents == [vid] and new.status == "READY"


def test_failed_export_reports_and_resumes_from_the_cli(cli, capi, fake_cvat, sample_export):  # noqa: F811
    admin = capi.default_actor
    vid = import_version(capi, admin, sample_export)
    _connect(cli, fake_cvat)
    fake_cvat.fail(method="POST", path=r"/api/tasks/\d+/data", status=503, times=-1)
    failed = cli.fails("cvat", "export", str(vid), "--connection", "fake", "--project", "p", "--task-name", "t",
                       match="export FAILED")
    assert "503" in failed.stderr and "dsgen cvat resume" in failed.stderr
    export_id = int(failed.stderr.split("dsgen cvat resume ", 1)[1].split()[0])
    assert "FAILED" in cli.ok("cvat", "exports").stdout
    fake_cvat.clear_faults()
    resumed = cli.ok("cvat", "resume", str(export_id))
    assert f"export {export_id} resumed" in resumed.stdout
    assert len(fake_cvat.tasks()) == 1 and fake_cvat.tasks()[0]["size"] == 12  # the same task, no duplicate
    assert _task_ids(resumed.stdout) == [fake_cvat.tasks()[0]["id"]]
    cli.fails("cvat", "resume", str(export_id), match=f"export {export_id} is DONE: nothing to resume")


def test_bad_input_gets_clear_errors(cli, capi, fake_cvat, sample_export):  # noqa: F811
    admin = capi.default_actor
    vid = import_version(capi, admin, sample_export)
    _connect(cli, fake_cvat)
    base = ["--project", "p", "--task-name", "t"]
    cli.fails("cvat", "export", str(vid), "--connection", "nope", *base, match="CVAT connection 'nope' not found")
    cli.fails("cvat", "export", str(vid), "--connection", "fake", "--query", "width>>3", *base,
              match="error: at 6: missing value")
    cli.fails("cvat", "export", str(vid), "--connection", "fake", "--query", "colour:red", *base,
              match="error: at 0: unknown field 'colour'")
    cli.fails("cvat", "export", str(vid), "--connection", "fake", "--query", "tag:nothing-has-this", *base,
              match="matches no image")
    cli.fails("cvat", "export", "999", "--connection", "fake", *base, match="not found")
    cli.fails("cvat", "export", str(vid), "--connection", "fake", "--quality", "0", *base,
              match="image quality 0")
    cli.fails("cvat", "export", str(vid), "--connection", "fake", "--project", "a/b", "--task-name", "t",
              match="project 'a/b'")
    cli.fails("cvat", "export", str(vid), *base, match="--connection", code=2)
    cli.fails("cvat", "resume", "12345", match="not found")
    cli.fails("cvat", "pull", "12345", "--into", "cars", "--yes", match="not exported by dsgen")
    cli.fails("cvat", "pull", "http://elsewhere/tasks/x", "--into", "cars", match="neither a CVAT task id nor")
    assert fake_cvat.tasks() == []  # nothing reached CVAT
    # a task deleted in CVAT before the pull-back
    out = cli.ok("cvat", "export", str(vid), "--connection", "fake", *base).stdout
    (tid,) = _task_ids(out)
    fake_cvat.delete_task(tid)
    cli.fails("cvat", "pull", str(tid), "--into", "cars", "--yes", match=f"task {tid} does not exist")


def test_connections_are_per_user_and_tokens_stay_hidden(cli, capi, fake_cvat, sample_export):  # noqa: F811
    admin = capi.default_actor
    vid = import_version(capi, admin, sample_export)
    capi.create_user(admin, "bob", password="bob-password-1")
    capi.grant(admin, "cars", "bob", "viewer")
    bob = capi.login("bob", "bob-password-1", kind="api").token
    cli.secrets.append(bob)
    _connect(cli, fake_cvat)  # the admin's
    assert "fake" not in cli.ok("cvat", "connections", token=bob).stdout
    cli.fails("cvat", "export", str(vid), "--connection", "fake", "--project", "p", "--task-name", "t",
              token=bob, match="CVAT connection 'fake' not found")
    _connect(cli, fake_cvat, "mine", token=bob)
    out = cli.ok("cvat", "export", str(vid), "--connection", "mine", "--project", "p", "--task-name", "t",
                 token=bob).stdout
    (tid,) = _task_ids(out)
    assert f"tasks: {tid}" in cli.ok("cvat", "exports", token=bob).stdout
    cli.fails("cvat", "pull", str(tid), "--into", "cars", "--yes", token=bob, match="error: ")  # viewer only
    cli.fails("cvat", "export", str(vid), "--connection", "mine", "--project", "p", "--task-name", "t",
              token="not-a-token", match="expired or was revoked")


def test_export_by_reference_from_the_cli(cli, capi, make_fake, sample_export, tmp_path):  # noqa: F811
    admin = capi.default_actor
    nas = tmp_path / "nas"
    vid = import_on_share(capi, admin, sample_export, nas)
    fake = make_fake("2.72.0", share_root=nas)
    cli.secrets.append(fake.password)
    saved = cli.ok(
        "cvat", "connect", "nas", fake.url, "--username", fake.username, "--share-root", str(nas),
        env={"DSGEN_CVAT_SECRET": fake.password})
    assert f"share {nas.resolve()}" in saved.stdout
    cli.fails("cvat", "connect", "x", fake.url, "--username", "u", "--cloud-storage", "2",
              env={"DSGEN_CVAT_SECRET": "s"}, match="a cloud storage needs the share folder too")
    exported = cli.ok("cvat", "export", str(vid), "--connection", "nas", "--project", "p",
                      "--task-name", "by-ref", "--references")
    assert "12 images in 1 task(s)" in exported.stdout
    assert fake.tasks()[0]["size"] == 12 and fake.tasks()[0]["frames"][0].startswith("cam3/")
    assert "12 images by reference" in cli.ok("cvat", "exports").stdout


def test_exif_oriented_images_need_a_choice_from_the_cli(cli, capi, fake_cvat, oriented_export):  # noqa: F811
    admin = capi.default_actor
    vid = import_version(capi, admin, oriented_export, group="phone")
    _connect(cli, fake_cvat)
    base = ["cvat", "export", str(vid), "--connection", "fake", "--project", "p", "--task-name", "t"]
    dry = cli(*base, "--dry-run")
    assert dry.returncode == 1 and "dry run: 12 images in 1 task(s) (t) as image bytes" in dry.stdout
    assert "3 image(s) carry an EXIF orientation" in dry.stdout and "turned 90° clockwise" in dry.stdout
    assert "--exif rotate" in dry.stderr
    cli.fails(*base, match="choose with --exif rotate or --exif as-is")
    assert fake_cvat.tasks() == [] and "nothing sent" in dry.stdout
    assert "they go upright" in cli.ok(*base, "--exif", "rotate", "--dry-run").stdout
    out = cli.ok(*base, "--exif", "rotate").stdout
    assert len(_task_ids(out)) == 1 and fake_cvat.tasks()[0]["size"] == 12


def test_pull_preview_lists_all_changes_and_a_zero_diff_creates_nothing(cli, capi, fake_cvat, sample_export):  # noqa: F811
    admin = capi.default_actor
    vid = import_version(capi, admin, sample_export)
    _connect(cli, fake_cvat)
    (tid,) = _task_ids(cli.ok("cvat", "export", str(vid), "--connection", "fake", "--project", "p",
                              "--task-name", "t").stdout)
    versions = len(capi.get_group(admin, "cars").versions)
    same = cli.ok("cvat", "pull", str(tid), "--into", "cars", "--yes")
    assert "nothing changed" in same.stdout and "no version created" in same.stdout
    assert len(capi.get_group(admin, "cars").versions) == versions
    forced = cli.ok("cvat", "pull", str(tid), "--into", "cars", "--yes", "--even-if-unchanged")
    assert "READY: cars/train v1.1.0" in forced.stdout
    frame = fake_cvat.task(tid).frames[0].name
    label = fake_cvat.labels(tid)[0].name
    for k in range(37):  # an annotator adds 37 boxes
        fake_cvat.add_box(tid, frame, label, (1.0 + k, 2.0, 5.0, 4.0))
    dry = cli.ok("cvat", "pull", str(tid), "--into", "cars", "--dry-run").stdout
    assert "+37 added" in dry
    assert len([line for line in dry.splitlines() if line.startswith("  added")]) == 30
    assert "… and 7 more change(s)" in dry and "--all" in dry
    every = cli.ok("cvat", "pull", str(tid), "--into", "cars", "--dry-run", "--all").stdout
    assert len([line for line in every.splitlines() if line.startswith("  added")]) == 37
    assert "more change(s)" not in every


def test_killed_cli_export_is_taken_over_after_the_stale_interval(cli, capi, make_fake, sample_export):  # noqa: F811
    """`dsgen cvat export` runs the job itself when no worker is up; killed mid-upload, the export stays RUNNING.
    `resume` says when it can take over (the stale interval), then continues the same task."""
    admin = capi.default_actor
    vid = import_version(capi, admin, sample_export)
    env = {"DSGEN_JOB_STALE_SECONDS": "2", "DSGEN_HEARTBEAT_SECONDS": "0.2", "DSGEN_CVAT_MAX_FILES": "2",
           "DSGEN_CVAT_UPLOAD_CONNECTIONS": "1"}  # batches one after another: a window to kill in
    fake = make_fake(max_files_per_request=2)
    cli.secrets.append(fake.password)
    slow = fake.fail(method="POST", path=r"/data/?$", delay=0.5, times=-1)
    _connect(cli, fake)
    full = {k: v for k, v in os.environ.items() if k not in ("DSGEN_TOKEN", "DSGEN_CVAT_SECRET")} | env
    proc = subprocess.Popen([sys.executable, "-m", "dsgen_core.cli", "cvat", "export", str(vid), "--connection",
                             "fake", "--project", "p", "--task-name", "killed"], cwd=ROOT, env=full,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    def uploading() -> bool:
        exports = capi.list_cvat_exports(admin)
        job = capi.get_job(admin, exports[0].job_id) if exports and exports[0].job_id else None
        return bool(job and "uploading images" in job.stage and job.processed >= 1)

    kill_when(proc, uploading, "the export's upload")
    (export,) = capi.list_cvat_exports(admin)
    assert export.status == "RUNNING" and fake.tasks()[0]["size"] == 0
    # the stale interval is the taking-over process's setting: a long one first (however slow this CLI starts)
    early = cli.fails("cvat", "resume", str(export.id), env={**env, "DSGEN_JOB_STALE_SECONDS": "600"},
                      match="DSGEN_JOB_STALE_SECONDS")
    assert f"job {export.job_id} is still running" in early.stderr and "dsgen worker" in early.stderr
    time.sleep(2.5)  # the killed process's job is now silent for longer than the stale interval of 2 s
    slow.times = 0
    resumed = cli.ok("cvat", "resume", str(export.id), env=env)
    assert f"export {export.id} resumed: job {export.job_id}" in resumed.stdout  # the same job, taken over
    assert [t["size"] for t in fake.tasks()] == [12] and len(fake.requests("POST", r"^/api/tasks/?$")) == 1
    assert capi.get_cvat_export(admin, export.id).status == "DONE"
    cli.fails("cvat", "resume", str(export.id), match=f"export {export.id} is DONE: nothing to resume")


def test_exports_list_says_which_tasks_exist(cli, capi, make_fake, sample_export):  # noqa: F811
    admin = capi.default_actor
    vid = import_version(capi, admin, sample_export)
    down = make_fake()
    cli.secrets.append(down.password)
    _connect(cli, down, "down")
    down.stop()
    cli.fails("cvat", "export", str(vid), "--connection", "down", "--project", "p", "--task-name", "t",
              "--max-images", "5", match="export FAILED")
    listed = cli.ok("cvat", "exports").stdout
    assert "FAILED" in listed and "tasks: none created (3 planned)" in listed and "None" not in listed
