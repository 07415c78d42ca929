"""Shared data for the insight tests: a generated CVAT export (module-cached), its pycocotools view,
and the facade with InsightsFacade mixed in (until Dsgen carries it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dsgen_core.api import Dsgen, ImportRequest
from dsgen_core.facade_insights import InsightsFacade
from dsgen_core.sample_data import ANNOTATIONS_NAME, SampleSpec, generate_cvat_coco

SPEC = SampleSpec(num_images=400, seed=11, with_images=False, mean_boxes=5.0)


InsightsApi = Dsgen  # the facade carries InsightsFacade
assert issubclass(InsightsApi, InsightsFacade)


def generated(root: Path) -> Path:
    if not (root / ANNOTATIONS_NAME).exists():
        generate_cvat_coco(root, SPEC)
    return root


def import_version(api: Any, path: Path, group: str = "street", split: str = "train") -> int:
    actor = api.default_actor
    started = api.start_import(actor, ImportRequest(path=str(path), group=group, split=split, annotations_only=True))
    job = api.run_job_here(actor, started.job_id)
    assert job.status == "SUCCEEDED", job.error
    return started.version_id
