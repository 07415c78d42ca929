"""The precompute job: the basic insights of a version, right after it becomes READY, cached in the catalog."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dsgen_core.catalog.models import DatasetVersion
from dsgen_core.jobs.queue import JobContext, JobKind, register

if TYPE_CHECKING:
    from dsgen_core.app import App

PRECOMPUTE = "insights.precompute"


def run_precompute(app: App, ctx: JobContext) -> dict[str, Any]:
    """Load the version's search engine and compute BASIC insights of the whole version (persisted)."""
    from dsgen_core.insights.registry import BASIC, InsightSettings
    from dsgen_core.insights.service import compute
    from dsgen_core.search import cache as engines

    version_id = int(ctx.params["version_id"])
    with app.catalog.session() as s:
        v = s.get(DatasetVersion, version_id)
        if v is None or v.status != "READY" or v.deleted_at is not None:
            return {"skipped": f"version {version_id} is not READY"}
        folder, split = app.settings.lake_root / v.lake_path, v.split
    ctx.stage("loading the version", len(BASIC))
    engine = engines.engine_for(app, version_id, folder, split)
    settings = InsightSettings.from_dict(ctx.params.get("settings"))
    done = []
    for n, name in enumerate(BASIC):
        ctx.stage(f"computing {name}", len(BASIC))
        compute(app, engine, "", name, settings, persist=True)
        done.append(name)
        ctx.progress(n + 1)
    return {"version_id": version_id, "insights": done}


register(JobKind(PRECOMPUTE, run_precompute))
