"""Benchmark of the CVAT export job against the protocol floor measured in the same run, at 300 and 2,000 images.

For each size, SampleSpec(num_images=N, seed=7) is imported through the facade into a fresh installation; a fake
CVAT 2.72 runs in a child process (as a real CVAT would), with its default request bounds in the client (16 MiB
and 100 files per request), so every upload goes in several `Upload-Multiple` batches. Each round runs, in a
rotating order and each after an untimed `sync` (no step pays for the write-back of the previous one's bytes):

* protocol floor: the same protocol done by hand with plain httpx and no dsgen code: create the task,
  Upload-Start, the same images in batches within the same bounds (each batch carrying `image_quality`, as CVAT
  requires), Upload-Finish with the frame order, wait for CVAT to build the task, one POST of the same
  (pre-written) COCO file, wait for the import. Done twice: batches one after another, and on 3 connections
  like the client. The target compares with the faster of the two.
* dsgen export job: `start_cvat_export` + the job, end to end (COCO written, project, task, upload, wait,
  annotation import), as ONE task of all images; and split into tasks of `--split` images (the product's
  default 1000; CVAT builds task k while task k+1's images upload).
* raw POST: all image bytes in ONE plain multipart POST (httpx `files=`) up to its 202 - what a CVAT without a
  proxy limit would take. Shown beside, with no target.

Also printed: the time before the first image byte (from the create request or `start_cvat_export` to the
first data request carrying files, read from the fake's log) and the batches each upload used.
Target: export job / protocol floor <= 1.1x, as the median of the per-round ratios (each round's job against
that round's faster floor: a shared machine's load drifts between rounds, less within one).

    python bench/cvat_export.py                        # 300 and 2,000 images, 3 rounds
    python bench/cvat_export.py --images 300 --rounds 1   # quick
    python bench/cvat_export.py --fake-tmp /dev/shm    # the fake keeps the uploads in RAM, not on disk
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

MAX_REQUEST_BYTES, MAX_FILES = 16 << 20, 100  # the client's default bounds (a proxy's 16 MiB, Django's files)
FLOOR_SEQ = "protocol floor by hand, batches one by one"
FLOOR_PAR = "protocol floor by hand, batches on 3 connections"
RAW = "raw: all bytes in one multipart POST (to 202)"
ONE = "dsgen export job, 1 task"


class Fake:
    """The fake CVAT in a child process, and its request log."""

    def __init__(self, fake_tmp: str) -> None:
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "cvat.py"), "--serve"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                                     env={**os.environ, "TMPDIR": fake_tmp})
        self.info = json.loads(self.proc.stdout.readline())  # type: ignore[union-attr]

    def log(self) -> list[dict[str, Any]]:
        self.proc.stdin.write("log\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return json.loads(self.proc.stdout.readline())  # type: ignore[union-attr]

    def close(self) -> None:
        self.proc.stdin.close()  # type: ignore[union-attr]
        self.proc.wait(timeout=900)  # the fake deletes every uploaded file on exit: slow on a busy disk


def upload_stats(log: list[dict[str, Any]], task_ids: list[int], t0: float) -> tuple[float, int]:
    """(seconds from t0 to the first data request carrying files, batches) of these tasks' uploads."""
    prefixes = tuple(f"/api/tasks/{t}/data" for t in task_ids)
    data = [r for r in log if r["method"] == "POST" and r["path"].startswith(prefixes) and r["files"]]
    return min(r["started"] for r in data) - t0, sum(1 for r in data if r["batch"])


def batches_of(names: list[str], paths: list[Path]) -> list[list[int]]:
    """What a hand-written client sends per request: up to 100 files and 16 MiB (a KiB per part for framing)."""
    out: list[list[int]] = [[]]
    size = 0
    for k, p in enumerate(paths):
        need = p.stat().st_size + 1024
        if out[-1] and (len(out[-1]) >= MAX_FILES or size + need > MAX_REQUEST_BYTES):
            out.append([])
            size = 0
        out[-1].append(k)
        size += need
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default="300,2000", help="comma-separated subset sizes")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--split", type=int, default=1000,
                    help="also export split into tasks of at most this many images (the product's default); 0 = no")
    ap.add_argument("--no-sync", action="store_true", help="no `sync` between steps")
    ap.add_argument("--fake-tmp", default=None, help="folder under which the fake CVAT stores uploads")
    args = ap.parse_args()
    sizes = [int(x) for x in args.images.split(",")]
    from cvat import ensure_data  # bench/cvat.py: the same cached sample data

    home = Path(tempfile.mkdtemp(prefix="dsgen-bench-export-"))
    os.environ.update({"DSGEN_HOME": str(home), "DSGEN_CATALOG_URL": f"sqlite:///{home / 'catalog.db'}",
                       "DSGEN_ADMIN_PASSWORD": "bench-admin-pw"})  # the client's own poll and retry defaults
    import httpx

    from dsgen_core.api import Dsgen, ImportRequest
    from dsgen_core.cvat import COCO, labels_from_coco
    from dsgen_core.cvat_sync.records import ExportRequest
    from dsgen_core.cvat_sync.subset import coco_summary, frame_names, subset_tables, write_part
    from dsgen_core.lake.store import read_tables

    api = Dsgen.open()
    admin = api.default_actor
    fake_tmp = args.fake_tmp or tempfile.gettempdir()
    fake = Fake(fake_tmp)
    url, user, password = fake.info["url"], fake.info["username"], fake.info["password"]
    conn = api.add_cvat_connection(admin, "bench", url, username=user, secret=password)
    http = httpx.Client(base_url=url, timeout=600)
    key = http.post("/api/auth/login", json={"username": user, "password": password}).json()["key"]
    http.cookies.clear()
    http.headers["Authorization"] = f"Token {key}"
    results: dict[int, tuple[list[dict[str, float]], float]] = {}
    loads: list[float] = []
    try:
        for n in sizes:
            data = ensure_data(n)
            started = api.start_import(admin, ImportRequest(path=str(data), group=f"bench-{n}"))
            assert api.run_job_here(admin, started.job_id).status == "SUCCEEDED"
            vid = started.version_id
            # the floor sends what the export sends: the same files under the same frame names, the same COCO
            tables = read_tables(api._ready_folder(admin, vid))
            ids = tables.images.column("image_id").to_pylist()
            names = frame_names(tables.images.column("file_name").to_pylist())
            paths = [api.app.storage.local_path(u) for u in tables.images.column("uri").to_pylist()]
            total = sum(p.stat().st_size for p in paths)
            sub = subset_tables(tables, ids)
            labels = labels_from_coco(coco_summary(sub))
            coco_file = write_part(sub, ids, names, home / f"coco-{n}.json")
            project = http.post("/api/projects", json={"name": f"floor-{n}", "labels": [lab.to_api() for lab in labels]}
                                ).json()["id"]
            plan = batches_of(names, paths)

            def wait(rq_id: str) -> None:
                while (st := http.get(f"/api/requests/{quote(rq_id, safe='')}").json()["status"]) != "finished":
                    assert st != "failed", st
                    time.sleep(0.01)

            def floor(i: int, connections: int, key: str, plan: list[list[int]] = plan, names: list[str] = names,
                      paths: list[Path] = paths, coco_file: Path = coco_file, project: int = project,
                      n: int = n) -> dict[str, float]:
                t0 = time.monotonic()
                tid = http.post("/api/tasks", json={"name": f"floor-{n}-{i}-{connections}", "project_id": project,
                                                    "segment_size": 500}).json()["id"]
                endpoint = f"/api/tasks/{tid}/data/"
                assert http.post(endpoint, headers={"Upload-Start": "true"}).status_code == 202

                def send(batch: list[int]) -> None:
                    handles = [open(paths[k], "rb") for k in batch]  # noqa: SIM115
                    try:
                        r = http.post(endpoint, headers={"Upload-Multiple": "true"}, data={"image_quality": "70"},
                                      files=[(f"client_files[{j}]", (names[k], h))
                                             for j, (k, h) in enumerate(zip(batch, handles, strict=True))])
                        assert r.status_code == 200, r.text
                    finally:
                        for h in handles:
                            h.close()

                with ThreadPoolExecutor(connections) as pool:
                    list(pool.map(send, plan))
                r = http.post(endpoint, headers={"Upload-Finish": "true"},
                              json={"image_quality": 70, "sorting_method": "predefined", "upload_file_order": names})
                wait(r.json()["rq_id"])
                with open(coco_file, "rb") as fh:
                    r = http.post(f"/api/tasks/{tid}/annotations", params={"format": COCO},
                                  files={"annotation_file": ("instances_default.json", fh)})
                wait(r.json()["rq_id"])
                secs = time.monotonic() - t0
                first, batches = upload_stats(fake.log(), [tid], t0)
                assert batches == len(plan) > 1, (batches, len(plan))
                return {key: secs, key + " first": first, key + " batches": batches}

            def raw(i: int, names: list[str] = names, paths: list[Path] = paths, project: int = project,
                    n: int = n) -> dict[str, float]:
                tid = http.post("/api/tasks", json={"name": f"raw-{n}-{i}", "project_id": project,
                                                    "segment_size": 500}).json()["id"]
                handles = [open(p, "rb") for p in paths]  # noqa: SIM115
                try:
                    t0 = time.monotonic()
                    r = http.post(f"/api/tasks/{tid}/data", data={"image_quality": "70", "sorting_method": "predefined"},
                                  files=[(f"client_files[{k}]", (m, h)) for k, (m, h) in
                                         enumerate(zip(names, handles, strict=True))])
                    secs = time.monotonic() - t0
                finally:
                    for h in handles:
                        h.close()
                assert r.status_code == 202, r.text
                wait(r.json()["rq_id"])
                fake.log()
                return {RAW: secs}

            def export(i: int, per_task: int, key: str, vid: int = vid, n: int = n) -> dict[str, float]:
                t0 = time.monotonic()
                ex = api.start_cvat_export(admin, ExportRequest(
                    version_id=vid, connection=conn.id, project=f"bench-{n}", task_name=f"bench-{n}-{i}-{per_task}",
                    max_images_per_task=per_task, segment_size=500, image_quality=70))
                job = api.run_job_here(admin, ex.job_id)
                secs = time.monotonic() - t0
                assert job.status == "SUCCEEDED", job.error
                tasks = [t.task_id for t in api.get_cvat_export(admin, ex.export_id).tasks]
                first, batches = upload_stats(fake.log(), tasks, t0)
                assert batches > len(tasks), batches  # more than one batch per task
                return {key: secs, key + " first": first, key + " batches": batches}

            split = f"dsgen export job, tasks of {args.split}"
            steps = [lambda i: floor(i, 1, FLOOR_SEQ), lambda i: floor(i, 3, FLOOR_PAR), raw,
                     lambda i, n=n: export(i, n, ONE)]
            if 0 < args.split < n:
                steps.append(lambda i, split=split: export(i, args.split, split))
            export(-1, n, ONE)  # warm-up: page cache, connections, imports, the login this process reuses
            floor(-1, 3, FLOOR_PAR)
            rounds: list[dict[str, float]] = []
            for i in range(args.rounds):  # rotate the order: load and write-back must favour no side
                row: dict[str, float] = {}
                for k in range(len(steps)):
                    if not args.no_sync:
                        os.sync()  # untimed: each step starts with no dirty pages left by the one before
                    loads.append(os.getloadavg()[0])
                    row.update(steps[(i + k) % len(steps)](i))
                rounds.append(row)
            results[n] = (rounds, total)
    finally:
        http.close()
        fake.close()
        api.app.close()
    report(results, args, fake_tmp, loads)


def report(results: dict[int, tuple[list[dict[str, float]], float]], args: argparse.Namespace, fake_tmp: str,
           loads: list[float]) -> None:
    print(f"\nCVAT export job vs the protocol floor: fake CVAT 2.72 in a child process on loopback, bounds 16 MiB / "
          f"100 files per request, median of {args.rounds} rounds per size{', no sync' if args.no_sync else ''}; "
          f"the fake stores uploads under {fake_tmp} ({_filesystem(fake_tmp)}); 1-min load average during the "
          f"steps {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores")
    summary = []
    for n, (rounds, total) in results.items():
        def med(key: str, rounds: list[dict[str, float]] = rounds) -> float:
            return statistics.median(r[key] for r in rounds)

        floor_key = min((FLOOR_SEQ, FLOOR_PAR), key=med)
        floor = med(floor_key)
        raw = med(RAW)
        jobs = [k for k in rounds[0] if k.startswith("dsgen export job") and not k.endswith((" first", " batches"))]
        print(f"\n{n} images, {total / 1e6:.1f} MB")
        print(f"{'':52} {'seconds':>8} {'images/s':>9} {'batches':>8} {'1st byte s':>10} {'vs floor':>9} "
              f"{'vs raw':>7}")
        for key in (FLOOR_SEQ, FLOOR_PAR, RAW, *jobs):
            secs = med(key)
            first = f"{med(key + ' first'):10.3f}" if key + " first" in rounds[0] else f"{'':10}"
            batches = f"{med(key + ' batches'):8.0f}" if key + " batches" in rounds[0] else f"{'1 POST':>8}"
            print(f"{key:52} {secs:8.3f} {n / secs:9.0f} {batches} {first} {secs / floor:8.2f}x {secs / raw:6.2f}x")
        for key in jobs:  # each round's job against that round's faster floor: the load drifts between rounds
            per_round = sorted(r[key] / min(r[FLOOR_SEQ], r[FLOOR_PAR]) for r in rounds)
            ratio = statistics.median(per_round)
            raws = statistics.median(r[key] / r[RAW] for r in rounds)
            summary.append(f"{n:>5} images  {key:32} / protocol floor = {ratio:.2f}x (target <= 1.1x): "
                           f"{'OK' if ratio <= 1.1 else 'MISSED'}   per round {', '.join(f'{x:.2f}x' for x in per_round)}"
                           f"   | / raw POST = {raws:.2f}x")
    print("\n" + "\n".join(summary))


def _filesystem(path: str) -> str:
    """The type of the file system holding `path` (tmpfs: RAM), from /proc/mounts."""
    best, kind = "", "unknown file system"
    real = os.path.realpath(path)
    try:
        with open("/proc/mounts") as fh:
            for line in fh:
                parts = line.split()
                mount = parts[1]
                if (real == mount or real.startswith(mount.rstrip("/") + "/")) and len(mount) >= len(best):
                    best, kind = mount, parts[2]
    except OSError:
        pass
    return kind


if __name__ == "__main__":
    main()
