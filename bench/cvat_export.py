"""Benchmark of the CVAT export job (issue 6): a 2,000-image subset exported end to end through the job.

Imports SampleSpec(num_images=2000, seed=7) through the facade into a fresh installation, then runs the
export job (COCO, project, task, bounded multi-request upload, wait, annotation import) against a fake
CVAT 2.72 in a child process, and compares with the same bytes sent in ONE plain multipart POST
(httpx `files=`) in the same run. Target: export / raw POST <= 1.5x.

    python bench/cvat_export.py                 # 2,000 S-sized JPEGs
    python bench/cvat_export.py --images 300    # quick smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=2000)
    args = ap.parse_args()
    from cvat import ensure_data  # bench/cvat.py: the same cached sample data

    data = ensure_data(args.images)
    home = Path(tempfile.mkdtemp(prefix="dsgen-bench-export-"))
    os.environ.update({"DSGEN_HOME": str(home), "DSGEN_CATALOG_URL": f"sqlite:///{home / 'catalog.db'}",
                       "DSGEN_ADMIN_PASSWORD": "bench-admin-pw", "DSGEN_CVAT_POLL": "0.05,0.5"})
    import httpx

    from dsgen_core.api import Dsgen, ImportRequest
    from dsgen_core.cvat_sync.records import ExportRequest
    from dsgen_core.facade_cvat import CvatFacade

    class Api(CvatFacade, Dsgen):
        pass

    api = Api.open()
    admin = api.default_actor
    t = time.perf_counter()
    started = api.start_import(admin, ImportRequest(path=str(data), group="bench"))
    assert api.run_job_here(admin, started.job_id).status == "SUCCEEDED"
    print(f"imported {args.images} images in {time.perf_counter() - t:.1f}s", file=sys.stderr)

    child = subprocess.Popen([sys.executable, str(ROOT / "bench" / "cvat.py"), "--serve"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        info = json.loads(child.stdout.readline())  # type: ignore[union-attr]
        conn = api.add_cvat_connection(admin, "bench", info["url"], username=info["username"],
                                       secret=info["password"])
        # baseline: the same bytes in one plain multipart POST
        from dsgen_core.catalog.cvat_models import CvatConnection
        from dsgen_core.cvat_sync.connections import client_for

        with api.app.catalog.session() as s:
            row = s.get(CvatConnection, conn.id)
        folder = api._ready_folder(admin, started.version_id)
        from dsgen_core.lake.store import read_tables

        images = read_tables(folder).images
        paths = [api.app.storage.local_path(u) for u in images.column("uri").to_pylist()]
        total = sum(p.stat().st_size for p in paths)
        with client_for(row) as client:
            project = client.create_project("raw", [])
            task = client.create_task("raw", project_id=project.id, segment_size=500)
            headers = client._t.auth_headers
            handles = [open(p, "rb") for p in paths]  # noqa: SIM115
            try:
                t0 = time.perf_counter()
                r = httpx.post(f"{info['url']}/api/tasks/{task.id}/data", headers=headers, timeout=600,
                               data={"image_quality": "70", "sorting_method": "predefined"},
                               files=[(f"client_files[{k}]", (f"f{k}.jpg", h)) for k, h in enumerate(handles)])
                raw_send = time.perf_counter() - t0
            finally:
                for h in handles:
                    h.close()
            assert r.status_code == 202, r.text
            client.wait(r.json()["rq_id"])
            raw_total = time.perf_counter() - t0

        stages: dict[str, float] = {}
        last = [time.perf_counter(), ""]

        def on_progress(stage: str, _done: int, _total: int) -> None:
            now = time.perf_counter()
            if stage != last[1]:
                if last[1]:
                    key = last[1].split(" (")[0]
                    stages[key] = stages.get(key, 0.0) + now - last[0]
                last[0], last[1] = now, stage

        t0 = time.perf_counter()
        ex = api.start_cvat_export(admin, ExportRequest(
            version_id=started.version_id, connection=conn.id, project="bench", task_name="bench",
            max_images_per_task=args.images, segment_size=500, image_quality=70))
        job = api.run_job_here(admin, ex.job_id, on_progress=on_progress)
        export_total = time.perf_counter() - t0
        on_progress("end", 0, 0)
        assert job.status == "SUCCEEDED", job.error
    finally:
        child.stdin.close()  # type: ignore[union-attr]
        child.wait(timeout=30)
        api.app.close()

    n = args.images
    print(f"\nCVAT export job: {n} images, {total / 1e6:.1f} MB, fake CVAT 2.72 in a child process on loopback")
    print(f"{'':48} {'seconds':>8} {'images/s':>9} {'MB/s':>7} {'vs raw POST':>12}")
    rows = [("raw: one multipart POST (to 202)", raw_send), ("raw: one POST + wait for task", raw_total),
            *((f"  export stage: {k}", v) for k, v in stages.items()),
            ("dsgen export job end to end (incl. annotations)", export_total)]
    for label, secs in rows:
        print(f"{label:48} {secs:8.3f} {n / secs:9.0f} {total / 1e6 / secs:7.1f} {secs / raw_send:11.2f}x")
    ratio = export_total / raw_send
    print(f"\nexport job / raw single POST = {ratio:.2f}x (target <= 1.5x): {'OK' if ratio <= 1.5 else 'MISSED'}; "
          f"vs raw POST + wait: {export_total / raw_total:.2f}x")


if __name__ == "__main__":
    main()
