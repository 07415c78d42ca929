"""The benchmark data sets, generated once under bench/data and shared by every bench script."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"


def ensure_l(small: bool = False) -> Path:
    """L: 118k images / ~870k annotations, annotations only; polygon share set so the JSON is ~330 MB,
    the size the issues name (COCO train2017-like). `small`: a tenth of it."""
    from dsgen_core.sample_data import SampleSpec, generate_cvat_coco

    n = 11_800 if small else 118_000
    folder = DATA / f"L-{n}-p55"
    if not (folder / "annotations" / "instances_default.json").exists():
        t = time.perf_counter()
        shutil.rmtree(folder, ignore_errors=True)
        generate_cvat_coco(folder, SampleSpec(num_images=n, seed=8, with_images=False, polygon_fraction=0.55))
        print(f"generated L in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    return folder


def open_l_version(home: Path, l_dir: Path):  # noqa: ANN201 - (api, actor, version_id)
    """A facade on `home` holding L imported once (annotations only); later runs reuse it."""
    from dsgen_core.api import Dsgen, ImportRequest

    os.environ.setdefault("DSGEN_ADMIN_PASSWORD", "bench-only")
    fresh = not (home / "catalog.db").exists()
    api = Dsgen.open(home)
    actor = api.default_actor
    if fresh:
        started = api.start_import(actor, ImportRequest(path=str(l_dir / "annotations" / "instances_default.json"),
                                                        group="bench", annotations_only=True))
        job = api.run_job_here(actor, started.job_id)
        assert job.status == "SUCCEEDED", job.error
    return api, actor, api.list_groups(actor)[0].versions[-1].id
