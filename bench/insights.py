"""Benchmark of insights and the SQL page (issue 5) on L (118k images / ~870k annotations).

Data exactly as bench/spine.py (SampleSpec(num_images=118000, seed=8, with_images=False,
polygon_fraction=0.55), annotations-only import), plus 10% of the images tagged `night` and a
4-valued metadata key `weather`. Printed, with same-run baselines; targets: each insight ≤ 200 ms warm,
the precompute job ≤ 5 s; the SQL page's overhead is its time minus raw DuckDB on the same query and data.

    python bench/insights.py            # L
    python bench/insights.py --small    # a tenth of the size
    python bench/insights.py --rounds 9 # more rounds of the insight timings (median, and min–max of rounds)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from datasets import ensure_l, open_l_version  # bench/datasets.py: the script's folder is on sys.path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))
RUNS = 7
SQL_QUERIES = [
    ("instances per class", "SELECT c.name, count(*) AS n FROM annotations a JOIN categories c "
                            "USING (version_id, category_id) GROUP BY ALL ORDER BY n DESC"),
    ("night images with > 10 boxes", "SELECT i.file_name FROM images i JOIN tags t USING (version_id, image_id) "
                                     "WHERE t.tag = 'night' AND i.num_annotations > 10 ORDER BY 1"),
    ("weather × mean box area", "SELECT m.value_str AS weather, avg(a.bbox_w * a.bbox_h) AS area FROM annotations a "
                                "JOIN metadata m USING (version_id, image_id) WHERE m.key = 'weather' GROUP BY ALL"),
]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def timed(fn, runs: int = RUNS) -> float:  # noqa: ANN001
    """Median wall time of `runs` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def open_api(l_dir: Path, small: bool):  # noqa: ANN201 - (api, actor, version_id, rows)
    from dsgen_core.curation.edits import BulkEdit
    from dsgen_core.search import service

    home = OUT / ("home-insights-small" if small else "home-insights")
    api, actor, vid = open_l_version(home, l_dir)
    rows = []
    t = time.perf_counter()
    engine = api._engine(actor, vid)
    rows.append(("engine load (first use in a process)", ms(time.perf_counter() - t), "", ""))
    if api.curation_seq(actor, vid) == 0:
        ids = service.matching_ids(engine, "")
        api.bulk_edit(actor, vid, BulkEdit.add_tag("night"), image_ids=ids[::10], confirm=True)
        for k, w in enumerate(("sun", "rain", "fog", "snow")):
            part = [i for n, i in enumerate(ids) if (n // 3) % 4 == k]
            api.bulk_edit(actor, vid, BulkEdit.set_key("weather", w), image_ids=part, confirm=True)
    return api, actor, vid, rows


def bench_derived(api, actor, vid: int, rows: list) -> None:  # noqa: ANN001
    """The one-off build of the derived per-version tables (paid by the first insight reading each, per engine)."""
    from dsgen_core.insights import derived

    engine = api._engine(actor, vid)
    tables = (derived.BOX, derived.BOX_RANGES, derived.ATTR, derived.COOC)
    derived.ensure(engine, *tables)
    built = derived.build_seconds(engine)
    rows.append(("derived tables: one-off build per engine, total (ms)", ms(sum(built.values())), "",
                 "in load / precompute"))
    for table in tables:
        rows.append((f"  {table} (ms)", ms(built[table]), "", ""))


def bench_insights(api, actor, vid: int, rows: list, rounds: int) -> None:  # noqa: ANN001
    """Each insight, uncached, on the whole version and on tag:night: the median of `rounds` rounds (each the
    median of 3 calls) and the spread of the round medians, as other processes share the CPUs."""
    from dsgen_core.insights import INSIGHTS, InsightSettings, Subset, registry

    engine = api._engine(actor, vid)
    settings = InsightSettings()
    cases = [(name, label, query) for name in INSIGHTS for label, query in (("all", ""), ("tag:night", "tag:night"))]
    got: dict[tuple[str, str], list[float]] = {(n, lab): [] for n, lab, _ in cases}
    for _ in range(rounds):
        for name, label, query in cases:
            plan = engine.plan(query)
            got[(name, label)].append(timed(lambda plan=plan, name=name: registry.run(engine, plan, name, settings),
                                            runs=3))
    for name, label, query in cases:
        api.insight(actor, vid, name, query)  # fill the cache
        cached = timed(lambda name=name, query=query: api.insight(actor, vid, name, query))
        times = got[(name, label)]
        mid = statistics.median(times)
        rows.append((f"insight {name} [{label}] compute / cached (ms)", ms(mid), ms(cached),
                     f"≤ 200 {'✓' if mid <= 0.2 else '✗'}  rounds {ms(min(times))}–{ms(max(times))}"))
    pair = [Subset(vid, "tag:night"), Subset(vid, "NOT tag:night")]
    for name in ("classes", "boxes", "cross"):
        def cold(name: str = name) -> None:
            api.app.insight_results.clear()
            api.compare_insight(actor, pair, name)

        rows.append((f"compare {name}: night vs not, through the facade, uncached (ms)", ms(timed(cold, runs=3)),
                     "", ""))


def bench_precompute(api, actor, vid: int, rows: list) -> None:  # noqa: ANN001
    from sqlalchemy import delete

    from dsgen_core.catalog.insight_models import InsightResult
    with api.app.catalog.session() as s:
        s.execute(delete(InsightResult).where(InsightResult.version_id == vid))
    api.app.insight_results.clear()
    api.app.engines.clear()  # as in a fresh worker: the engine is loaded by the job
    job_id = api.precompute_insights(actor, vid)
    t = time.perf_counter()
    info = api.run_job_here(actor, job_id)
    wall = time.perf_counter() - t
    assert info.status == "SUCCEEDED", info.error
    rows.append(("precompute job (engine load + ins_box(_ranges) + classes, resolution, boxes) (s)", f"{wall:.2f}", "",
                 f"≤ 5 {'✓' if wall <= 5 else '✗'}"))


def bench_sql(api, actor, vid: int, rows: list) -> None:  # noqa: ANN001
    import duckdb

    api.app.sandboxes.clear()
    t = time.perf_counter()
    api.run_sql(actor, "SELECT 1", [vid])
    rows.append(("SQL sandbox build (copy the version in, lock) (s)", f"{time.perf_counter() - t:.2f}", "", ""))
    box = api.app.sandboxes.values()[0]
    raw = duckdb.connect()  # the same rows in a plain, unlocked DuckDB: the baseline
    for table in ("versions", "images", "annotations", "categories", "tags", "metadata"):
        raw.register("src", box.raw().cursor().sql(f"SELECT * FROM {table}").to_arrow_table())  # noqa: S608
        raw.execute(f"CREATE TABLE {table} AS SELECT * FROM src")  # noqa: S608
        raw.unregister("src")
    for name, sql in SQL_QUERIES:
        base = timed(lambda sql=sql: raw.sql(sql).to_arrow_table())
        page = timed(lambda sql=sql: api.run_sql(actor, sql, [vid]))
        rows.append((f"SQL {name}: page / raw DuckDB (ms)", ms(page), ms(base), f"overhead {ms(page - base)} ms"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small", action="store_true")
    p.add_argument("--rounds", type=int, default=5, help="rounds of the insight timings (median and spread)")
    args = p.parse_args()
    l_dir = ensure_l(args.small)
    api, actor, vid, rows = open_api(l_dir, args.small)
    v = api.get_version(actor, vid)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nL: {v.num_images:,} images, {v.num_annotations:,} annotations; catalog SQLite; {os.cpu_count()} CPUs; "
          f"load average at start {load} (other processes share the CPUs: compare runs at similar load)\n")
    bench_derived(api, actor, vid, rows)
    bench_insights(api, actor, vid, rows, max(1, args.rounds))
    bench_precompute(api, actor, vid, rows)
    bench_sql(api, actor, vid, rows)
    rows.append(("load average at the end (1 / 5 / 15 min)", ", ".join(f"{x:.1f}" for x in os.getloadavg()), "", ""))
    w = max(len(r[0]) for r in rows)
    print(f"{'measure':<{w}}  {'value':>9}  {'second':>9}  target / note")
    for name, a, b, note in rows:
        print(f"{name:<{w}}  {a:>9}  {b:>9}  {note}")


if __name__ == "__main__":
    main()
