"""Benchmark of the Explore gallery (issue 4): server-side cost of one 100-tile page, and its payload size.

Data: SampleSpec(num_images=2000, seed=7) (real JPEGs) imported through the facade, then the thumbnails
job, in a fresh installation under bench/out/home-gallery. Measured per page (p50 / p95 over RUNS pages
spread over the result): from the query to the component's JSON payload (facade search → page overlays
→ payload → json.dumps), exactly what pages/explore.py does per run. Baseline, same run and same tiles:
the st.image way — Pillow draws the boxes into each thumbnail server-side and ships it as a data URI.

    python bench/gallery.py
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))
from table import print_table  # noqa: E402 - bench/table.py: the script's own folder is on sys.path

RUNS = 30
PAGE = 100
TARGET_MS = 300.0
QUERIES = [("all, by file name", "", "file_name", False), ("category:person, by boxes desc", "category:person",
                                                            "boxes", True)]


def setup() -> tuple[object, int]:
    """A fresh installation with the 2,000-image sample imported and its thumbnails made."""
    from dsgen_core.api import Dsgen, ImportRequest
    from dsgen_core.sample_data import SampleSpec, generate_cvat_coco_zip

    DATA.mkdir(parents=True, exist_ok=True)
    zip_path = DATA / "gallery-2000-s7.zip"
    if not zip_path.exists():
        generate_cvat_coco_zip(zip_path, SampleSpec(num_images=2000, seed=7))
    home = OUT / "home-gallery"
    shutil.rmtree(home, ignore_errors=True)
    os.environ.update(DSGEN_HOME=str(home), DSGEN_CATALOG_URL=f"sqlite:///{home / 'catalog.db'}",
                      DSGEN_ADMIN_PASSWORD="bench-admin-pw")
    api = Dsgen.open()
    actor = api.default_actor
    started = api.start_import(actor, ImportRequest(path=str(zip_path), group="gallery"))
    assert api.run_job_here(actor, started.job_id).status == "SUCCEEDED"
    for job in api.list_jobs(actor):
        if job.kind == "thumbnails" and job.status == "QUEUED":
            assert api.run_job_here(actor, job.id).status == "SUCCEEDED"
    return api, started.version_id


def payload_json(api, actor, vid: int, query: str, order: str, desc: bool, offset: int) -> str:  # noqa: ANN001
    from pages._gallery import build_payload

    page = api.search_images(actor, vid, query, order, desc, PAGE, offset)
    overlays = api.page_overlays(actor, vid, page.image_ids)
    return json.dumps(build_payload(overlays, vid, set(page.image_ids[:3])))


def data_uri_page(api, actor, vid: int, query: str, order: str, desc: bool, offset: int) -> str:  # noqa: ANN001
    """The baseline: boxes drawn by Pillow into each thumbnail, every tile a JPEG data URI."""
    from PIL import Image, ImageDraw

    from dsgen_core.importing.job import thumb_path

    page = api.search_images(actor, vid, query, order, desc, PAGE, offset)
    overlays = api.page_overlays(actor, vid, page.image_ids, polygons=False)
    tiles = []
    for t in overlays.tiles:
        with Image.open(thumb_path(api.app, _sha(api, vid, t.image_id))) as im:
            img = im.convert("RGB")
        sx, sy = img.width / max(1, t.width), img.height / max(1, t.height)
        draw = ImageDraw.Draw(img)
        for _, x, y, w, h in t.boxes:
            draw.rectangle((x * sx, y * sy, (x + w) * sx, (y + h) * sy), outline=(255, 0, 0), width=2)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=80)
        tiles.append({"i": t.image_id, "n": t.file_name, "src": "data:image/jpeg;base64,"
                      + base64.b64encode(buf.getvalue()).decode()})
    return json.dumps({"tiles": tiles})


_SHA: dict[tuple[int, int], str] = {}


def _sha(api, vid: int, iid: int) -> str:  # noqa: ANN001
    if not _SHA:

        rows = api.app.engines.get(vid).fetchall("SELECT image_id, sha256 FROM images")
        _SHA.update({(vid, int(i)): s for i, s in rows})
    return _SHA[(vid, iid)]


def timed(fn, *args) -> tuple[list[float], int]:  # noqa: ANN001
    """ms per call over RUNS pages spread over the result; the size of the first page's payload."""
    api, actor, vid, query, order, desc = args
    total = api.search_images(actor, vid, query, order, desc, 0, 0).total
    offsets = [(i * PAGE * 7) % max(PAGE, total - PAGE) for i in range(RUNS)]
    size = len(fn(*args, 0).encode())  # also warms up: engine built, parquet metadata cached
    times = []
    for off in offsets:
        t0 = time.perf_counter()
        fn(*args, off)
        times.append((time.perf_counter() - t0) * 1000)
    return times, size


def p50_p95(ms: list[float]) -> str:
    q = statistics.quantiles(ms, n=20)
    return f"{statistics.median(ms):.0f} / {q[18]:.0f}"


def main() -> None:
    t0 = time.perf_counter()
    api, vid = setup()
    actor = api.default_actor
    print(f"setup (generate if needed, import 2,000 JPEGs, thumbnails): {time.perf_counter() - t0:.1f} s")
    rows = []
    for name, query, order, desc in QUERIES:
        ours, our_size = timed(payload_json, api, actor, vid, query, order, desc)
        base, base_size = timed(data_uri_page, api, actor, vid, query, order, desc)
        p95 = statistics.quantiles(ours, n=20)[18]
        rows.append((f"{name}: query → payload, 100 tiles (ms p50/p95)", p50_p95(ours), p50_p95(base),
                     f"{statistics.median(base) / statistics.median(ours):.1f}× faster", f"≤ {TARGET_MS:.0f} ms p95",
                     p95 <= TARGET_MS))
        rows.append((f"{name}: payload size, first page (KB)", f"{our_size / 1024:.0f}", f"{base_size / 1024:.0f}",
                     f"{base_size / our_size:.1f}× smaller", "thumbnails by URL", "data:" not in
                     payload_json(api, actor, vid, query, order, desc, 0)))
    thumb_ms = []
    ids = api.search_images(actor, vid, "", limit=PAGE).image_ids
    for iid in ids:
        t = time.perf_counter()
        api.thumbnail_file(actor, vid, iid)
        thumb_ms.append((time.perf_counter() - t) * 1000)
    rows.append(("thumbnail_file (route's facade call, rights + lookup) ms p50/p95", p50_p95(thumb_ms), "—", "—",
                 "—", True))
    print_table(rows, ("measure", "dsgen (URL + client SVG)", "data URI + Pillow boxes (same run)", "ratio",
                       "target", "met"))
    api.app.close()


if __name__ == "__main__":
    main()
