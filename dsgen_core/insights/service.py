"""Computing insights with the cache: shared by the facade (web, CLI) and the precompute job (worker)."""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import polars as pl

from dsgen_core.insights import cache, registry
from dsgen_core.insights.registry import InsightSettings
from dsgen_core.insights.sqlkit import merge_ranges, subset_cursor

if TYPE_CHECKING:
    from dsgen_core.app import App
    from dsgen_core.search.engine import VersionEngine

Tables = dict[str, pl.DataFrame]


@dataclass
class InsightResult:
    """One insight over one or more subsets: every table carries a leading `subset` column."""

    name: str
    title: str
    subsets: list[str]
    tables: Tables
    seconds: float = 0.0
    cached: list[bool] = field(default_factory=list)  # per subset: served from the cache

    def table(self, name: str) -> pl.DataFrame:
        return self.tables[name]


def compute(app: App, engine: VersionEngine, query: str, name: str, settings: InsightSettings,
            persist: bool | None = None) -> tuple[Tables, bool]:
    """One insight on one subset, from the cache when it has it; returns (tables, was cached).

    Results of the whole version (empty query) are persisted in the catalog; others stay in memory."""
    plan = engine.plan(query)
    seq = engine.seq if registry.reads_curation(name, plan) else -1
    key = cache.cache_key(seq, plan, name, settings.to_dict())
    hit = cache.get(app, engine.version_id, key)
    if hit is not None:
        return hit, True
    tables = registry.run(engine, plan, name, settings)
    cache.put(app, engine.version_id, key, name, seq, tables,
              persist=plan.matches_all if persist is None else persist)
    return tables, False


def compute_binned_together(app: App, engines: list[tuple[str, VersionEngine, str]], name: str,
                            settings: InsightSettings) -> list[tuple[Tables, bool]]:
    """A binned insight on several subsets whose histograms share their edges: each subset's value ranges
    are merged and every subset is binned on the union, so that bar k means the same values on every side.

    Each result depends on its peers too: they are part of its cache key (kept in memory only)."""
    plans = [engine.plan(query) for _, engine, query in engines]
    seqs = [engine.seq if registry.reads_curation(name, plan) else -1
            for (_, engine, _), plan in zip(engines, plans, strict=True)]
    peers = [[engine.version_id, seq, repr(plan.key)] for (_, engine, _), seq, plan in zip(engines, seqs, plans, strict=True)]
    conf = settings.to_dict()
    keys = [cache.cache_key(seq, plan, name, conf, peers) for plan, seq in zip(plans, seqs, strict=True)]
    hits = [cache.get(app, engine.version_id, key) for (_, engine, _), key in zip(engines, keys, strict=True)]
    if all(h is not None for h in hits):
        return [(h, True) for h in hits if h is not None]
    with ExitStack() as stack:
        cursors = [stack.enter_context(subset_cursor(engine, plan))
                   for (_, engine, _), plan in zip(engines, plans, strict=True)]
        ranges = merge_ranges(registry.ranges_on(cur, engine, name, settings)
                              for (_, engine, _), cur in zip(engines, cursors, strict=True))
        out = []
        for (_, engine, _), cur, key, seq, hit in zip(engines, cursors, keys, seqs, hits, strict=True):
            if hit is not None:
                out.append((hit, True))
                continue
            tables = registry.run_on(cur, engine, name, settings, ranges)
            cache.put(app, engine.version_id, key, name, seq, tables, persist=False)
            out.append((tables, False))
    return out


def labelled(parts: list[tuple[str, Tables]]) -> Tables:
    """Concatenate per-subset results table by table with the subset's label as the first column."""
    names: list[str] = []
    for _, tables in parts:
        names += [n for n in tables if n not in names]
    out: Tables = {}
    for n in names:
        frames = [t[n].with_columns(pl.lit(label).alias("subset")).select("subset", *t[n].columns)
                  for label, t in parts if n in t]
        out[n] = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
    return out


def run_subsets(app: App, engines: list[tuple[str, VersionEngine, str]], name: str,
                settings: InsightSettings) -> InsightResult:
    """The insight for each (label, engine, query), side by side; histograms of several subsets share edges."""
    t0 = time.perf_counter()
    if len(engines) > 1 and registry.kind(name).ranges is not None:
        results = compute_binned_together(app, engines, name, settings)
    else:
        results = [compute(app, engine, query, name, settings) for _, engine, query in engines]
    parts = [(label, tables) for (label, _, _), (tables, _) in zip(engines, results, strict=True)]
    return InsightResult(name=name, title=registry.kind(name).title, subsets=[p[0] for p in parts],
                         tables=labelled(parts), seconds=time.perf_counter() - t0, cached=[h for _, h in results])
