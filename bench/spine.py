"""Benchmark of the spine (issue 2): import speed and memory, lake size, cold start, thumbnails.

Every number is measured in this run next to its baseline (pycocotools, a naive Pillow loop).
Heavy steps run in child processes so their wall time and peak RSS are their own.

    python bench/spine.py            # S = 10k images with JPEGs, L = 118k images / ~870k annotations
    python bench/spine.py --small    # quick smoke run at a tenth of the size
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from datasets import ensure_l
from table import print_table  # bench/table.py: the script's own folder is on sys.path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))


def child(code: str, env: dict[str, str] | None = None) -> dict:
    """Run python code in a fresh process; it prints one JSON line; add wall time and peak RSS."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-4000:])
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out.setdefault("wall_s", wall)
    return out


MEASURE = """
import json, resource, time, sys
t0 = time.perf_counter()
{body}
print(json.dumps({{"inner_s": time.perf_counter() - t0,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **result}}))
"""


def ensure_data(small: bool) -> tuple[Path, Path]:
    from dsgen_core.sample_data import SampleSpec, generate_cvat_coco

    s_n = 1000 if small else 10_000
    s_dir = DATA / f"S-{s_n}"
    l_dir = ensure_l(small)
    if not (s_dir / "annotations" / "instances_default.json").exists():
        t = time.perf_counter()
        shutil.rmtree(s_dir, ignore_errors=True)
        generate_cvat_coco(s_dir, SampleSpec(num_images=s_n, seed=7))
        print(f"generated S in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    return s_dir, l_dir


def import_in_child(home: Path, path: Path, annotations_only: bool) -> dict:
    shutil.rmtree(home, ignore_errors=True)
    body = f"""
from dsgen_core.api import Dsgen, ImportRequest
api = Dsgen.open()
a = api.default_actor
st = api.start_import(a, ImportRequest(path={str(path)!r}, group="bench", annotations_only={annotations_only}))
t1 = time.perf_counter()
job = api.run_job_here(a, st.job_id)
elapsed = time.perf_counter() - t1
v = api.get_version(a, st.version_id)
assert job.status == "SUCCEEDED", job.error
result = {{"import_s": elapsed, "version_id": v.id, "group_id": v.group_id, "images": v.num_images,
          "annotations": v.num_annotations}}
"""
    env = {"DSGEN_HOME": str(home), "DSGEN_CATALOG_URL": f"sqlite:///{home / 'catalog.db'}",
           "DSGEN_ADMIN_PASSWORD": "bench-only"}
    return child(MEASURE.format(body=body), env) | {"env": env}


def du_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def bench_l(l_dir: Path, rows: list) -> None:
    json_path = l_dir / "annotations" / "instances_default.json"
    size_mb = json_path.stat().st_size / 1e6
    coco = child(MEASURE.format(body=f"""
from pycocotools.coco import COCO
c = COCO({str(json_path)!r})
result = {{"anns": len(c.anns)}}
"""))
    ours = import_in_child(OUT / "home-L", json_path, annotations_only=True)
    ratio = ours["import_s"] / coco["inner_s"]
    rows.append(("L: JSON -> READY version (s)", f"{ours['import_s']:.2f}", f"pycocotools COCO(): {coco['inner_s']:.2f}",
                 f"{ratio:.2f}x", "<= 0.5x", ratio <= 0.5))
    rows.append(("L: peak memory of the import process (MB)", f"{ours['peak_mb']:.0f}",
                 f"pycocotools: {coco['peak_mb']:.0f}", "", "<= 2048", ours["peak_mb"] <= 2048))
    lake = OUT / "home-L" / "lake" / f"g{ours['group_id']}" / f"v{ours['version_id']}"
    lake_mb = du_mb(lake)
    rows.append(("L: lake size on disk (MB)", f"{lake_mb:.1f}", f"JSON: {size_mb:.0f}", f"{lake_mb / size_mb:.2f}x",
                 "<= 80", lake_mb <= 80))
    cold = child(f"""
import time, json, subprocess
t0 = time.perf_counter()
from dsgen_core.api import Dsgen
api = Dsgen.open()
counts = api.class_counts(api.default_actor, {ours['version_id']})
print(json.dumps({{"classes": len(counts), "first_answer_s": time.perf_counter() - t0}}))
""", ours["env"])
    rows.append(("L: cold start to first query answer (s, process spawn included)", f"{cold['wall_s']:.2f}",
                 f"in-process: {cold['first_answer_s']:.2f}", "", "<= 1.0", cold["wall_s"] <= 1.0))
    rows.append(("  (L: images / annotations imported)", f"{ours['images']} / {ours['annotations']}",
                 f"pycocotools anns: {coco['anns']}", "", "", True))


def bench_s(s_dir: Path, rows: list) -> None:
    ours = import_in_child(OUT / "home-S", s_dir, annotations_only=False)
    ips = ours["images"] / ours["import_s"]
    rows.append(("S: full import with media checks (images/s)", f"{ips:.0f}", f"{ours['images']} images in "
                 f"{ours['import_s']:.1f}s", "", ">= 1000", ips >= 1000))
    # thumbnails: ours (draft decode, processes) vs a naive Pillow loop on the same files
    from dsgen_core.importing.sources import list_image_files
    from dsgen_core.media import make_thumbnails, naive_thumbnail

    # every 10th file: the sample spans all of S's resolutions (sorted order groups them by sequence)
    files = sorted(list_image_files(s_dir / "images").values())[::10][:1000]
    naive_dir, fast_dir = OUT / "thumbs-naive", OUT / "thumbs-fast"
    for d in (naive_dir, fast_dir):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    t = time.perf_counter()
    for i, f in enumerate(files):
        naive_thumbnail(f, naive_dir / f"{i}.jpg")
    naive_rate = len(files) / (time.perf_counter() - t)
    t = time.perf_counter()
    make_thumbnails([(f, fast_dir / f"{i}.jpg") for i, f in enumerate(files)])
    fast_rate = len(files) / (time.perf_counter() - t)
    rows.append(("S: thumbnails per second (1000 images, every 10th)", f"{fast_rate:.0f}", f"naive Pillow loop: {naive_rate:.0f}",
                 f"{fast_rate / naive_rate:.1f}x", ">= 3x", fast_rate / naive_rate >= 3))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="a tenth of the size, for a quick check")
    ap.add_argument("--only", choices=["S", "L"], help="run one part")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    s_dir, l_dir = ensure_data(args.small)
    rows: list = []
    if args.only in (None, "L"):
        bench_l(l_dir, rows)
    if args.only in (None, "S"):
        bench_s(s_dir, rows)
    print(f"\nmachine: {os.cpu_count()} cores; python {sys.version.split()[0]}; "
          f"bench peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB\n")
    print_table(rows)


if __name__ == "__main__":
    main()
