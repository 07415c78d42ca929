"""The demo dataset: a generated CVAT COCO export imported as group `demo` (train and val)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from dsgen_core.api import Dsgen, ImportRequest
from dsgen_core.sample_data import SampleSpec, generate_cvat_coco_zip
from dsgen_core.users import Actor

DEMO_GROUP = "demo"


def load_demo(api: Dsgen, actor: Actor, num_images: int = 60, follow: Callable | None = None) -> bool:
    """Generate and import the demo; `follow(api, actor, job_id)` waits for each import. True if all are READY."""
    out = api.app.settings.home / "demo"
    out.mkdir(parents=True, exist_ok=True)
    ok = True
    for split, n, seed in (("train", num_images, 1), ("val", max(4, num_images // 4), 2)):
        zip_path = out / f"demo-{split}-{n}.zip"
        if not zip_path.exists():
            print(f"generating demo {split} split: {n} images ...", file=sys.stderr)
            generate_cvat_coco_zip(zip_path, SampleSpec(num_images=n, seed=seed))
        started = api.start_import(actor, ImportRequest(
            path=str(zip_path), group=DEMO_GROUP, split=split, dataset_type="RAW",
            task_types=["detection", "segmentation"], description="Generated CVAT COCO 1.0 demo data",
        ))
        print(f"demo {split}: import job {started.job_id} (v{started.version})", file=sys.stderr)
        if follow is not None:
            info = follow(api, actor, started.job_id)
            ok = ok and info.status == "SUCCEEDED"
    return ok
