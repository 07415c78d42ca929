"""The CLI as a user runs it: real subprocesses on the fixture's installation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import ann_rec, coco_doc, image_rec, simple_export, write_export, zip_folder

ROOT = Path(__file__).resolve().parent.parent


def dsgen(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "dsgen_core.cli", *args], cwd=ROOT, env=dict(os.environ),
                          capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stdout + proc.stderr)
    return proc


@pytest.mark.parametrize(
    "cmd",
    [[], ["import"], ["datasets"], ["datasets", "list"], ["datasets", "show"], ["export"], ["jobs"],
     ["jobs", "show"], ["jobs", "cancel"], ["worker"], ["serve"], ["up"], ["demo"]],
)
def test_help_everywhere(cmd):
    proc = subprocess.run([sys.executable, "-m", "dsgen_core.cli", *cmd, "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "usage: dsgen" in proc.stdout


def test_import_wait_list_and_export(dsgen_env, tmp_path):
    z = zip_folder(simple_export(tmp_path / "exp", n=3), tmp_path / "exp.zip")
    proc = dsgen("import", str(z), "--group", "cli", "--split", "val", "--type", "SOURCE", "--wait", check=True)
    assert "READY: cli/val v1.0.0: 3 images, 6 annotations, 2 classes" in proc.stdout
    assert "no worker running" in proc.stderr
    listed = json.loads(dsgen("datasets", "list", "--json", check=True).stdout)
    assert listed[0]["name"] == "cli" and listed[0]["dataset_type"] == "SOURCE"
    version = listed[0]["versions"][0]
    assert (version["status"], version["num_images"], version["split"]) == ("READY", 3, "val")
    out = tmp_path / "back.json"
    dsgen("export", str(version["id"]), "--out", str(out), check=True)
    assert len(json.loads(out.read_text())["annotations"]) == 6
    table = dsgen("datasets", "list", check=True).stdout
    assert "cli" in table and "READY" in table


def test_wait_follows_a_running_worker(api, tmp_path):
    """With a worker up, --wait follows the job's stages: a queued job says so, and no stage line is blank or
    the terminal "done"."""
    worker = subprocess.Popen([sys.executable, "-m", "dsgen_core.cli", "worker"], cwd=ROOT, env=dict(os.environ),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while api.live_workers() == 0 and time.monotonic() < deadline:  # the worker registers itself first
            time.sleep(0.1)
        z = zip_folder(simple_export(tmp_path / "exp", n=3), tmp_path / "exp.zip")
        proc = dsgen("import", str(z), "--group", "w", "--wait", check=True)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    assert "READY: w/train v1.0.0: 3 images" in proc.stdout
    assert "no worker running" not in proc.stderr
    lines = [line.strip() for line in proc.stderr.replace("\r", "\n").splitlines() if line.strip()]
    assert "..." not in lines and "done ..." not in lines, proc.stderr
    bars = [line for line in lines if "img/s" in line or "img]" in line]
    assert not bars or "3/3" in bars[-1], proc.stderr  # a finished stage's bar ends full


def test_failed_import_exits_nonzero_with_report(dsgen_env, tmp_path):
    doc = coco_doc([image_rec(1, "a.jpg")], [ann_rec(1, 2)])
    root = write_export(tmp_path / "bad", doc, {"a.jpg": (64, 48)})
    proc = dsgen("import", str(root), "--group", "bad", "--wait")
    assert proc.returncode == 1
    assert "unknown_image_ref" in proc.stdout and "annotation 1: image_id 2 not found" in proc.stdout
    assert "import FAILED" in proc.stderr
    check = dsgen("import", str(root), "--group", "bad", "--check")
    assert check.returncode == 1 and "[ERROR] unknown_image_ref" in check.stdout


def test_clear_error_for_missing_path(dsgen_env, tmp_path):
    proc = dsgen("import", str(tmp_path / "nope.zip"), "--group", "g")
    assert proc.returncode == 1
    assert "nope.zip: no such file or folder" in proc.stderr and "Traceback" not in proc.stderr


def test_demo_loads_ready_dataset(dsgen_env):
    proc = dsgen("demo", "--images", "8", check=True)
    listed = json.loads(dsgen("datasets", "list", "--json", check=True).stdout)
    assert listed[0]["name"] == "demo", proc.stderr
    assert {v["split"]: v["status"] for v in listed[0]["versions"]} == {"train": "READY", "val": "READY"}


def test_up_on_a_fresh_installation_prints_a_one_time_password_that_logs_in(dsgen_env, monkeypatch):
    """The README's first command: demo loaded, app served, and the first admin's password shown once."""
    import re
    import socket
    import time
    import urllib.request

    monkeypatch.delenv("DSGEN_ADMIN_PASSWORD")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "dsgen_core.cli", "up", "--port", str(port), "--address",
                             "127.0.0.1", "--images", "6"], cwd=ROOT, env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "data folder:" in line or proc.poll() is not None:
                break
        out = "".join(lines)
        found = re.search(r"one-time password (\S+)", out)
        assert found, out
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/auth/login", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                time.sleep(0.2)
        from dsgen_core.api import Dsgen

        api = Dsgen.open()
        assert api.admin_password is None  # shown once, by `up`
        actor = api.login("admin", found.group(1)).actor
        assert [g.name for g in api.list_groups(actor)] == ["demo"]
        api.app.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
