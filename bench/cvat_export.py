"""Benchmark of the CVAT export job (issue 6): a 2,000-image subset exported end to end through the job.

Imports SampleSpec(num_images=2000, seed=7) through the facade into a fresh installation, then runs the
export job (COCO, project, task, bounded multi-request upload, wait, annotation import) against a fake
CVAT 2.72 in a child process, with the client's default poll and retry settings. Baselines, measured in
the same run (each round runs all of them; medians are printed):

* raw POST: the same image bytes in ONE plain multipart POST (httpx `files=`) up to its 202.
  Target: export job / raw POST <= 1.5x.
* protocol floor: what the same protocol costs when done by hand with plain httpx and no dsgen code —
  that POST, waiting for CVAT to build the task, one plain POST of the same (pre-written) COCO file and
  waiting for CVAT to import it. Its waits are CVAT's own work, which no client can avoid; the export
  job / floor ratio is therefore our overhead over the protocol itself.

    python bench/cvat_export.py                 # 2,000 S-sized JPEGs, 3 rounds
    python bench/cvat_export.py --images 300 --rounds 1    # quick smoke run
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from cvat import ensure_data  # bench/cvat.py: the same cached sample data

    data = ensure_data(args.images)
    home = Path(tempfile.mkdtemp(prefix="dsgen-bench-export-"))
    os.environ.update({"DSGEN_HOME": str(home), "DSGEN_CATALOG_URL": f"sqlite:///{home / 'catalog.db'}",
                       "DSGEN_ADMIN_PASSWORD": "bench-admin-pw"})  # the client's own poll and retry defaults
    import httpx

    from dsgen_core.api import Dsgen, ImportRequest
    from dsgen_core.catalog.cvat_models import CvatConnection
    from dsgen_core.cvat import COCO, labels_from_coco
    from dsgen_core.cvat_sync.connections import client_for
    from dsgen_core.cvat_sync.records import ExportRequest
    from dsgen_core.cvat_sync.subset import coco_summary, frame_names, subset_tables, write_part
    from dsgen_core.lake.store import read_tables

    api = Dsgen.open()
    admin = api.default_actor
    t = time.perf_counter()
    started = api.start_import(admin, ImportRequest(path=str(data), group="bench"))
    assert api.run_job_here(admin, started.job_id).status == "SUCCEEDED"
    print(f"imported {args.images} images in {time.perf_counter() - t:.1f}s", file=sys.stderr)

    # The baselines send what the export sends: the same files under the same frame names, the same COCO.
    tables = read_tables(api._ready_folder(admin, started.version_id))
    ids = tables.images.column("image_id").to_pylist()
    names = frame_names(tables.images.column("file_name").to_pylist())
    paths = [api.app.storage.local_path(u) for u in tables.images.column("uri").to_pylist()]
    total = sum(p.stat().st_size for p in paths)
    sub = subset_tables(tables, ids)
    labels = labels_from_coco(coco_summary(sub))
    coco_file = write_part(sub, ids, names, home / "raw-coco.json")

    child = subprocess.Popen([sys.executable, str(ROOT / "bench" / "cvat.py"), "--serve"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, cwd=ROOT)
    rounds: list[dict[str, float]] = []
    try:
        info = json.loads(child.stdout.readline())  # type: ignore[union-attr]
        conn = api.add_cvat_connection(admin, "bench", info["url"], username=info["username"],
                                       secret=info["password"])
        with api.app.catalog.session() as s:
            row = s.get(CvatConnection, conn.id)
        client = client_for(row)
        project = client.create_project("raw", labels)
        url, headers = info["url"], client._t.auth_headers

        def raw(i: int) -> dict[str, float]:
            task = client.create_task(f"raw-{i}", project_id=project.id, segment_size=500)
            handles = [open(p, "rb") for p in paths]  # noqa: SIM115
            try:
                t0 = time.perf_counter()
                r = httpx.post(f"{url}/api/tasks/{task.id}/data", headers=headers, timeout=600,
                               data={"image_quality": "70", "sorting_method": "predefined"},
                               files=[(f"client_files[{k}]", (n, h)) for k, (n, h) in
                                      enumerate(zip(names, handles, strict=True))])
                send = time.perf_counter() - t0
            finally:
                for h in handles:
                    h.close()
            assert r.status_code == 202, r.text
            client.wait(r.json()["rq_id"])
            built = time.perf_counter() - t0
            with open(coco_file, "rb") as fh:
                r = httpx.post(f"{url}/api/tasks/{task.id}/annotations", params={"format": COCO}, headers=headers,
                               timeout=600, files={"annotation_file": ("instances_default.json", fh)})
            assert r.status_code == 202, r.text
            client.wait(r.json()["rq_id"])
            floor = time.perf_counter() - t0
            assert client.get_task(task.id).size == len(paths)
            return {"raw: one multipart POST (to 202)": send, "raw: one POST + wait for task": built,
                    "protocol floor: + plain annotation POST + wait": floor}

        def export(i: int) -> dict[str, float]:
            stages: dict[str, float] = {}
            last: list[Any] = [time.perf_counter(), ""]

            def on_progress(stage: str, _done: int, _total: int) -> None:
                now = time.perf_counter()
                if stage != last[1]:
                    if last[1]:
                        key = "  export stage: " + last[1].split(" (")[0]
                        stages[key] = stages.get(key, 0.0) + now - last[0]
                    last[0], last[1] = now, stage

            t0 = time.perf_counter()
            ex = api.start_cvat_export(admin, ExportRequest(
                version_id=started.version_id, connection=conn.id, project="bench", task_name=f"bench-{i}",
                max_images_per_task=args.images, segment_size=500, image_quality=70))
            job = api.run_job_here(admin, ex.job_id, on_progress=on_progress)
            end = time.perf_counter()
            on_progress("end", 0, 0)
            assert job.status == "SUCCEEDED", job.error
            return {**stages, "dsgen export job end to end (incl. annotations)": end - t0}

        export(-1)  # warm-up: page cache, connections, imports
        for i in range(args.rounds):  # alternate the order: the disk's write-back must not favour either side
            rounds.append({**raw(i), **export(i)} if i % 2 == 0 else {**export(i), **raw(i)})
        client.close()
    finally:
        child.stdin.close()  # type: ignore[union-attr]
        child.wait(timeout=30)
        api.app.close()

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    n = args.images
    base = med("raw: one multipart POST (to 202)")
    floor = med("protocol floor: + plain annotation POST + wait")
    export_total = med("dsgen export job end to end (incl. annotations)")
    print(f"\nCVAT export job: {n} images, {total / 1e6:.1f} MB, fake CVAT 2.72 in a child process on loopback, "
          f"median of {args.rounds} rounds")
    print(f"{'':48} {'seconds':>8} {'images/s':>9} {'MB/s':>7} {'vs raw POST':>12}")
    for label in ("raw: one multipart POST (to 202)", "raw: one POST + wait for task",
                  "protocol floor: + plain annotation POST + wait", *(k for k in rounds[0] if k.startswith("  ")),
                  "dsgen export job end to end (incl. annotations)"):
        secs = med(label)
        print(f"{label:48} {secs:8.3f} {n / secs:9.0f} {total / 1e6 / secs:7.1f} {secs / base:11.2f}x")
    ratios = [r["dsgen export job end to end (incl. annotations)"] / r["raw: one multipart POST (to 202)"]
              for r in rounds]
    ratio = export_total / base
    print(f"\nexport job / raw single POST = {ratio:.2f}x (target <= 1.5x): {'OK' if ratio <= 1.5 else 'MISSED'}; "
          f"per round {', '.join(f'{x:.2f}x' for x in ratios)}")
    print(f"export job / protocol floor (same steps by hand, CVAT's own work included) = {export_total / floor:.2f}x")


if __name__ == "__main__":
    main()
