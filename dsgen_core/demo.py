"""The demo dataset: a generated CVAT COCO export imported as group `demo` (train and val)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from dsgen_core.api import Dsgen, ImportRequest
from dsgen_core.importing.uploads import new_upload
from dsgen_core.sample_data import SampleSpec, generate_cvat_coco_zip
from dsgen_core.users import Actor

DEMO_GROUP = "demo"


def load_demo(api: Dsgen, actor: Actor, num_images: int = 60, follow: Callable | None = None) -> bool:
    """Generate and import the demo; `follow(api, actor, job_id)` waits for each import. True if all are READY.
    The zips are made as the actor's uploads (the data folder is never importable); each import removes its own."""
    ok = True
    for split, n, seed in (("train", num_images, 1), ("val", max(4, num_images // 4), 2)):
        zip_path = new_upload(api.app.settings, actor.id, f"demo-{split}-{n}.zip")
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
