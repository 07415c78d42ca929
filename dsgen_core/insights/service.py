"""Computing insights with the cache: shared by the facade (web, CLI) and the precompute job (worker)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import polars as pl

from dsgen_core.insights import cache, registry
from dsgen_core.insights.registry import InsightSettings
from dsgen_core.search.service import compile_for

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
    compiled = compile_for(engine, query)
    seq = engine.seq if registry.reads_curation(name, compiled.where) else -1
    conf = settings.to_dict()
    key = cache.cache_key(seq, query, name, conf)
    hit = cache.get(app.catalog, engine.version_id, key)
    if hit is not None:
        return hit, True
    tables = registry.run(engine, compiled.where, compiled.params, name, settings)
    cache.put(app.catalog, engine.version_id, key, name, seq, tables,
              persist=(not query.strip()) if persist is None else persist)
    return tables, False


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
    """The insight for each (label, engine, query), side by side."""
    t0 = time.perf_counter()
    parts, cached = [], []
    for label, engine, query in engines:
        tables, hit = compute(app, engine, query, name, settings)
        parts.append((label, tables))
        cached.append(hit)
    return InsightResult(name=name, title=registry.kind(name).title, subsets=[p[0] for p in parts],
                         tables=labelled(parts), seconds=time.perf_counter() - t0, cached=cached)
