"""Jobs: safe claiming, progress, cancel, and recovery after a worker is killed mid-import."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from dsgen_core.api import ImportRequest
from dsgen_core.catalog.models import Job
from dsgen_core.jobs import queue
from dsgen_core.sample_data import SampleSpec, generate_cvat_coco

ROOT = Path(__file__).resolve().parent.parent


def _noop(app, ctx):
    ctx.stage("counting", 3)
    for i in range(3):
        ctx.progress(i + 1)
    return {"ok": True}


def _until_cancelled(app, ctx):
    ctx.stage("waiting", 100)
    for i in range(400):
        ctx.progress(i % 100)
        ctx.check_cancel()
        time.sleep(0.01)
    return {"never": "cancelled"}


queue.register(queue.JobKind("test.noop", _noop))
queue.register(queue.JobKind("test.until_cancelled", _until_cancelled))


def test_concurrent_claims_never_share_a_job(api, admin):
    ids = [queue.enqueue(api.app, "test.noop", {}, admin.id) for _ in range(30)]
    claimed: list[int] = []
    lock = threading.Lock()

    def claimer(n: int) -> None:
        while (job_id := queue.claim(api.app, f"w{n}")) is not None:
            with lock:
                claimed.append(job_id)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == ids


def test_progress_and_result(api, admin):
    job_id = queue.enqueue(api.app, "test.noop", {}, admin.id)
    info = api.run_job_here(admin, job_id)
    assert (info.status, info.processed, info.total, info.result) == ("SUCCEEDED", 3, 3, {"ok": True})
    assert "stage: counting" in info.log


def test_cancel_running_job(api, admin):
    job_id = queue.enqueue(api.app, "test.until_cancelled", {}, admin.id)
    t = threading.Thread(target=api.run_job_here, args=(admin, job_id))
    t.start()
    deadline = time.time() + 10
    while api.get_job(admin, job_id).status != "RUNNING" and time.time() < deadline:
        time.sleep(0.02)
    api.cancel_job(admin, job_id)
    t.join(timeout=15)
    assert api.get_job(admin, job_id).status == "CANCELLED"


def test_cancel_queued_import_marks_version_error(api, admin, tmp_path):
    from helpers import simple_export

    started = api.start_import(admin, ImportRequest(path=str(simple_export(tmp_path / "e")), group="c"))
    assert api.cancel_job(admin, started.job_id).status == "CANCELLED"
    assert api.get_version(admin, started.version_id).status == "ERROR"
    assert queue.claim(api.app, "w") is None


def test_stale_job_is_requeued_then_failed_when_out_of_attempts(api, admin):
    job_id = queue.enqueue(api.app, "test.noop", {}, admin.id)
    assert queue.claim(api.app, "dead-worker") == job_id
    time.sleep(0.2)
    assert queue.recover_stale(api.app, stale_after=0.1) == [job_id]
    assert api.get_job(admin, job_id).status == "QUEUED"
    with api.app.catalog.session() as s:
        s.get(Job, job_id).max_attempts = 1
    assert queue.claim(api.app, "dead-again") == job_id
    time.sleep(0.2)
    queue.recover_stale(api.app, stale_after=0.1)
    info = api.get_job(admin, job_id)
    assert info.status == "FAILED" and "stopped responding" in info.error


@pytest.fixture(scope="module")
def big_export(tmp_path_factory) -> Path:
    spec = SampleSpec(num_images=600, seed=11, resolutions=((320, 240),), mean_boxes=3.0)
    return generate_cvat_coco(tmp_path_factory.mktemp("kill") / "exp", spec)


def _start_worker(env_extra=None) -> subprocess.Popen:
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.Popen([sys.executable, "-m", "dsgen_core.cli", "worker"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _kill_mid_import(api, admin, started, stages=("checking images", "storing images")) -> None:
    worker = _start_worker()
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            info = api.get_job(admin, started.job_id)
            if info.stage in stages and info.status == "RUNNING":
                break
            assert not info.finished, f"job ended before the kill: {info.status} {info.stage}"
            time.sleep(0.005)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()


def _wait_job(api, admin, job_id, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        info = api.get_job(admin, job_id)
        if info.finished:
            return info
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {api.get_job(admin, job_id)}")


def _finish_with_new_worker(api, admin, job_id):
    """Start a fresh worker process and wait for it to end the job."""
    worker = _start_worker()
    try:
        return _wait_job(api, admin, job_id)
    finally:
        worker.terminate()
        worker.wait(timeout=10)


def test_worker_killed_mid_import_is_recovered(api, admin, big_export):
    started = api.start_import(admin, ImportRequest(path=str(big_export), group="k"))
    _kill_mid_import(api, admin, started)
    killed = api.get_job(admin, started.job_id)
    assert killed.status == "RUNNING"  # nobody finished it
    assert api.get_version(admin, started.version_id).status == "PROCESSING"  # never READY half-written
    info = _finish_with_new_worker(api, admin, started.job_id)
    assert info.status == "SUCCEEDED", info.error
    v = api.get_version(admin, started.version_id)
    assert v.status == "READY" and v.num_images == 600
    with api.app.catalog.session() as s:
        assert s.get(Job, started.job_id).attempts == 2
    # the recovered version equals a clean import of the same data
    ref = api.start_import(admin, ImportRequest(path=str(big_export), group="k-ref"))
    api.run_job_here(admin, ref.job_id)
    assert api.get_version(admin, ref.version_id).content_hash == v.content_hash
    assert not list(api.app.settings.lake_root.glob(".staging-*"))
    folder = api.app.settings.lake_root / f"g{v.group_id}" / f"v{v.id}"
    assert duckdb.execute("SELECT count(*) FROM read_parquet(?)", [str(folder / "images.parquet")]).fetchone()[0] == 600


def test_worker_killed_with_no_attempts_left_fails_cleanly(api, admin, big_export):
    started = api.start_import(admin, ImportRequest(path=str(big_export), group="k2"))
    with api.app.catalog.session() as s:
        s.get(Job, started.job_id).max_attempts = 1
    _kill_mid_import(api, admin, started)
    info = _finish_with_new_worker(api, admin, started.job_id)
    assert info.status == "FAILED" and "out of attempts" in info.error
    v = api.get_version(admin, started.version_id)
    assert v.status == "ERROR"
    assert not (api.app.settings.lake_root / f"g{v.group_id}" / f"v{v.id}").exists()
    assert not list(api.app.settings.lake_root.glob(".staging-*"))
