"""Benchmark of the CVAT client: upload of a 2,000-image subset to the fake CVAT on loopback.

Our client end to end (create task, bounded multi-request upload, wait for the server to build the
task) against the baseline measured in the same run: the same bytes in ONE plain multipart POST
(httpx `files=`). The fake runs in a child process, as a real CVAT would; the client polls with its
default policy. Target: ratio <= 1.5x.

    python bench/cvat.py                 # 2,000 S-sized JPEGs (SampleSpec(num_images=2000, seed=7))
    python bench/cvat.py --images 300    # quick smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def serve() -> None:
    """Child process: run a fake CVAT until stdin closes; print its address as one JSON line. Each line `log` on
    stdin answers one JSON line: the requests seen since the last one (time.monotonic() is CLOCK_MONOTONIC,
    the same clock in every process of the machine, so the parent can time against `started`)."""
    from cvat_fake import FakeCvat

    share = os.environ.get("DSGEN_BENCH_FAKE_SHARE")  # the folder CVAT sees as its share (exports by reference)
    with FakeCvat("2.72.0", share_root=Path(share) if share else None) as fake:
        print(json.dumps({"url": fake.url, "username": fake.username, "password": fake.password}), flush=True)
        for line in sys.stdin:
            if line.strip() == "log":
                with fake.state.lock:
                    seen, fake.log[:] = list(fake.log), []
                print(json.dumps([{"method": r.method, "path": r.path, "started": r.started, "files": r.files,
                                   "batch": "Upload-Multiple" in r.headers} for r in seen]), flush=True)


def ensure_data(n: int) -> Path:
    from dsgen_core.sample_data import SampleSpec, generate_cvat_coco

    out = ROOT / "bench" / "data" / f"cvat-S-{n}"
    if not (out / "annotations" / "instances_default.json").exists():
        shutil.rmtree(out, ignore_errors=True)
        t = time.perf_counter()
        generate_cvat_coco(out, SampleSpec(num_images=n, seed=7))
        print(f"generated {n} images in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--serve", action="store_true")
    args = ap.parse_args()
    if args.serve:
        serve()
        return

    import httpx

    from dsgen_core.cvat import Credentials, CvatClient, LabelSpec, UploadFile, flat_names

    data = ensure_data(args.images)
    doc = json.loads((data / "annotations" / "instances_default.json").read_text())
    rel = [im["file_name"] for im in doc["images"]]
    names = flat_names(rel)
    files = [UploadFile(n, data / "images" / r) for n, r in zip(names, rel, strict=True)]
    total = sum(f.size for f in files)

    child = subprocess.Popen([sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, cwd=ROOT)
    try:
        info = json.loads(child.stdout.readline())  # type: ignore[union-attr]
        client = CvatClient.connect(info["url"], Credentials.login(info["username"], info["password"]))
        project = client.create_project("bench", [LabelSpec(c["name"]) for c in doc["categories"]])
        token = client._t.auth_headers  # the baseline speaks the same auth

        def ours(i: int) -> dict:
            t0 = time.perf_counter()
            task = client.create_task(f"ours-{i}", project_id=project.id, segment_size=500)
            report = client.upload_images(task.id, files, image_quality=70, wait=False)
            t1 = time.perf_counter()
            client.wait(report.rq_id)
            t2 = time.perf_counter()
            assert client.get_task(task.id).size == len(files)
            return {"send": t1 - t0, "total": t2 - t0, "requests": len(report.request_sizes),
                    "max_req": max(report.request_sizes)}

        def raw(i: int) -> dict:
            task = client.create_task(f"raw-{i}", project_id=project.id, segment_size=500)
            handles = [open(f.path, "rb") for f in files]  # noqa: SIM115
            try:
                t0 = time.perf_counter()
                r = httpx.post(f"{info['url']}/api/tasks/{task.id}/data", headers=token, timeout=600,
                               data={"image_quality": "70", "sorting_method": "predefined"},
                               files=[(f"client_files[{k}]", (f.name, h)) for k, (f, h) in
                                      enumerate(zip(files, handles, strict=True))])
                t1 = time.perf_counter()
            finally:
                for h in handles:
                    h.close()
            assert r.status_code == 202, r.text
            client.wait(r.json()["rq_id"])
            t2 = time.perf_counter()
            return {"send": t1 - t0, "total": t2 - t0, "requests": 1, "max_req": int(r.request.headers.get(
                "Content-Length", total))}

        ours(-1)  # warm-up: page cache, connections
        runs_ours, runs_raw = [], []
        for i in range(args.rounds):
            runs_raw.append(raw(i))
            runs_ours.append(ours(i))
        client.close()
    finally:
        child.stdin.close()  # type: ignore[union-attr]
        child.wait(timeout=30)

    def med(runs: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    n = len(files)
    base = med(runs_raw, "send")
    rows = [
        ("raw: one multipart POST (to 202)", med(runs_raw, "send"), runs_raw[0]),
        ("raw: one POST + wait for task", med(runs_raw, "total"), runs_raw[0]),
        ("dsgen client: create + upload (to 202)", med(runs_ours, "send"), runs_ours[0]),
        ("dsgen client: create + upload + wait", med(runs_ours, "total"), runs_ours[0]),
    ]
    print(f"\nCVAT upload: {n} images, {total / 1e6:.1f} MB, fake CVAT 2.72 in a child process on loopback, "
          f"median of {args.rounds} rounds")
    print(f"{'':42} {'seconds':>8} {'images/s':>9} {'MB/s':>7} {'requests':>9} {'max req MB':>11} {'vs raw':>7}")
    for label, secs, run in rows:
        print(f"{label:42} {secs:8.3f} {n / secs:9.0f} {total / 1e6 / secs:7.1f} {run['requests']:9d} "
              f"{run['max_req'] / 1e6:11.2f} {secs / base:6.2f}x")
    ratio = med(runs_ours, "total") / base
    print(f"\nend-to-end client / raw single POST = {ratio:.2f}x (target <= 1.5x): {'OK' if ratio <= 1.5 else 'MISSED'}")


if __name__ == "__main__":
    main()
