"""Probe: read_coco wall time and peak RSS on a large CVAT-style COCO file, next to pycocotools.

Usage:
    python bench/coco_parse_probe.py                   # generate bench/data/coco_large.json if missing
    python bench/coco_parse_probe.py path/to/file.json # measure an existing file
    python bench/coco_parse_probe.py --images 1000 --annotations 8000 --out /tmp/small.json

Each measurement runs in its own child process so ru_maxrss is that reader's own peak.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PATH = ROOT / "bench" / "data" / "coco_large.json"
CATEGORY_NAMES = ["person", "car", "bicycle", "dog", "cat", "truck", "bus", "traffic light", "bird", "boat"]
COLORS = ["red", "green", "blue", "white", "black"]


def _header(n_images: int) -> bytes:
    """Top-level keys before the big arrays, shaped like a CVAT COCO 1.0 export."""
    info = {"contributor": "", "date_created": "", "description": "", "url": "", "version": "", "year": ""}
    licenses = [{"name": "", "id": 0, "url": ""}]
    cats = [{"id": i + 1, "name": n, "supercategory": ""} for i, n in enumerate(CATEGORY_NAMES)]
    head = orjson.dumps({"licenses": licenses, "info": info, "categories": cats})
    return head[:-1] + b',"images":['


def _image_chunk(ids: np.ndarray) -> bytes:
    """Image records for one chunk of ids, serialized by orjson in one call."""
    recs = [
        {
            "id": int(i),
            "width": 640,
            "height": 480,
            "file_name": f"{int(i):012d}.jpg",
            "license": 0,
            "flickr_url": "",
            "coco_url": "",
            "date_captured": 0,
        }
        for i in ids
    ]
    return orjson.dumps(recs)[1:-1]


def _rle_counts(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Uncompressed RLE counts that sum to h*w, as CVAT writes for crowd masks."""
    runs = rng.integers(1, 400, size=120)
    runs = runs[np.cumsum(runs) < h * w]
    return np.append(runs, h * w - runs.sum()).astype(np.int64)


def _annotation_chunk(rng: np.random.Generator, first_id: int, n: int, n_images: int) -> bytes:
    """Annotation records for one chunk: 8-23 point polygons (1 decimal), ~1% RLE crowd, CVAT attributes."""
    npts = rng.integers(8, 24, size=n)
    offsets = np.concatenate([[0], np.cumsum(npts * 2)])
    cx = rng.uniform(50, 590, size=n)
    cy = rng.uniform(50, 430, size=n)
    coords = rng.uniform(-40, 40, size=int(offsets[-1]))
    centers = np.empty_like(coords)
    owner = np.repeat(np.arange(n), npts * 2)
    is_x = (np.arange(coords.size) - offsets[owner]) % 2 == 0
    centers[is_x] = cx[owner[is_x]]
    centers[~is_x] = cy[owner[~is_x]]
    coords = np.round(coords + centers, 1)
    image_ids = rng.integers(1, n_images + 1, size=n)
    cats = rng.integers(1, len(CATEGORY_NAMES) + 1, size=n)
    crowd = rng.random(n) < 0.01
    occluded = rng.random(n) < 0.2
    color = rng.integers(0, len(COLORS), size=n)
    recs = []
    for k in range(n):
        poly = coords[offsets[k] : offsets[k + 1]]
        xs, ys = poly[0::2], poly[1::2]
        x0, y0 = float(xs.min()), float(ys.min())
        bbox = [x0, y0, round(float(xs.max()) - x0, 2), round(float(ys.max()) - y0, 2)]
        rec = {"id": first_id + k, "image_id": int(image_ids[k]), "category_id": int(cats[k])}
        if crowd[k]:
            counts = _rle_counts(rng, 480, 640)
            seg = {"counts": counts, "size": [480, 640]}
        else:
            seg = [poly]
        rec["segmentation"] = seg
        rec["area"] = round(bbox[2] * bbox[3] * 0.6, 2)
        rec["bbox"] = bbox
        rec["iscrowd"] = int(crowd[k])
        rec["attributes"] = {"occluded": bool(occluded[k]), "rotation": 0.0, "color": COLORS[color[k]]}
        recs.append(rec)
    return orjson.dumps(recs, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1]


def generate(path: Path, n_images: int, n_annotations: int, seed: int = 0, chunk: int = 50_000) -> None:
    """Write a large COCO file chunk by chunk without holding the records of the whole file."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    with open(tmp, "wb") as f:
        f.write(_header(n_images))
        for start in range(1, n_images + 1, chunk):
            f.write(b"," if start > 1 else b"")
            f.write(_image_chunk(np.arange(start, min(start + chunk, n_images + 1))))
        f.write(b'],"annotations":[')
        for start in range(0, n_annotations, chunk):
            f.write(b"," if start else b"")
            f.write(_annotation_chunk(rng, start + 1, min(chunk, n_annotations - start), n_images))
        f.write(b"]}")
    os.replace(tmp, path)


def _child(which: str, path: str) -> None:
    """Run one reader and print 'seconds maxrss_kb detail' (executed in a fresh interpreter).

    Imports are timed separately: they are a once-per-process cost, not parsing.
    """
    sys.path.insert(0, str(ROOT))
    t0 = time.perf_counter()
    if which == "read_coco":
        from dsgen_core.formats.coco_reader import read_coco
        from dsgen_core.validation import ValidationReport
    else:
        from pycocotools.coco import COCO
    t1 = time.perf_counter()
    cpu0 = time.process_time()
    if which == "read_coco":
        report = ValidationReport()
        tables = read_coco(Path(path), report)
        if tables is None:
            print(report.render_text(), file=sys.stderr)
            raise SystemExit(1)
        detail = f"images={tables.images.num_rows} annotations={tables.annotations.num_rows}"
    else:
        coco = COCO(path)
        detail = f"images={len(coco.imgs)} annotations={len(coco.anns)}"
    dt = time.perf_counter() - t1
    cpu = time.process_time() - cpu0
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{dt:.3f} {rss_kb} cpu {cpu:.2f}s, imports {t1 - t0:.2f}s, {detail}")


def _measure(which: str, path: Path) -> tuple[float, float, str]:
    """Run a reader in a child process; return (seconds, peak RSS MiB, detail)."""
    out = (
        subprocess.run(
            [sys.executable, __file__, "--child", which, str(path)],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    secs, rss_kb, detail = out.split(" ", 2)
    return float(secs), int(rss_kb) / 1024, detail


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", nargs="?", type=Path, help="existing COCO JSON (default: generate)")
    ap.add_argument("--out", type=Path, default=DEFAULT_PATH)
    ap.add_argument("--images", type=int, default=118_000)
    ap.add_argument("--annotations", type=int, default=870_000)
    ap.add_argument("--regenerate", action="store_true")
    ap.add_argument("--skip-pycocotools", action="store_true")
    ap.add_argument(
        "--repeat", type=int, default=1, help="read_coco runs (fresh process each); the machine may be shared"
    )
    ap.add_argument("--child", nargs=2, metavar=("WHICH", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return
    path = args.path
    if path is None:
        path = args.out
        if args.regenerate or not path.exists():
            t0 = time.perf_counter()
            generate(path, args.images, args.annotations)
            print(f"generated {path} in {time.perf_counter() - t0:.1f} s")
    print(f"file: {path} ({path.stat().st_size / 1e6:.1f} MB), cpus={os.cpu_count()}")
    runs = [_measure("read_coco", path) for _ in range(max(1, args.repeat))]
    for secs, rss, detail in runs:
        print(f"read_coco:          {secs:6.2f} s  peak RSS {rss:7.0f} MiB  ({detail})")
    if len(runs) > 1:
        print(f"read_coco best of {len(runs)}: {min(r[0] for r in runs):.2f} s")
    if not args.skip_pycocotools:
        secs, rss, detail = _measure("pycocotools", path)
        print(f"pycocotools COCO(): {secs:6.2f} s  peak RSS {rss:7.0f} MiB  ({detail})")


if __name__ == "__main__":
    main()
