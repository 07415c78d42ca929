"""The insight catalogue: names, titles, settings, and running one insight on one subset of an engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import duckdb
import polars as pl

from dsgen_core.errors import InvalidRequest
from dsgen_core.insights import cross, derived, distributions, geometry
from dsgen_core.insights.attrs import Attrs
from dsgen_core.insights.sqlkit import Ranges, subset_cursor
from dsgen_core.query.plan import Plan
from dsgen_core.search.engine import VersionEngine

Tables = dict[str, pl.DataFrame]


@dataclass(frozen=True)
class Subset:
    """A DSL subset of a version; `label` names it in comparisons (default: the query, or "all")."""

    version_id: int
    query: str = ""
    label: str | None = None

    @property
    def name(self) -> str:
        return self.label or self.query.strip() or "all"


@dataclass
class InsightSettings:
    """Knobs shared by the insights; part of every cache key and of saved views."""

    top: int = 10  # values kept per key / attribute / variable
    bins: int = 20  # histogram bins
    grid: int = 10  # centre heatmap cells per side
    tiny_px: float = 4.0  # a box with a side below this is tiny
    min_instances: int = 10  # classes below this are reported as rare
    examples: int = 100  # example rows kept in issue tables
    metadata_keys: list[str] = field(default_factory=list)  # cross-analysis keys (empty: all, up to 8)
    attribute_keys: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> InsightSettings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data or {}) - known)
        if unknown:
            raise InvalidRequest(f"unknown insight settings {unknown}; known: {sorted(known)}")
        s = cls(**(data or {}))
        limits = {"top": (1, 1000), "bins": (1, 500), "grid": (1, 100), "min_instances": (0, 10**9),
                  "examples": (0, 100_000)}
        for name, (lo, hi) in limits.items():
            value = getattr(s, name)
            if not isinstance(value, int) or not lo <= value <= hi:
                raise InvalidRequest(f"insight setting {name}={value!r}: expected an integer in {lo}..{hi}")
        if not isinstance(s.tiny_px, int | float) or s.tiny_px < 0:
            raise InvalidRequest(f"insight setting tiny_px={s.tiny_px!r}: expected a number ≥ 0")
        return s

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class InsightKind:
    name: str
    title: str
    run: Callable[..., Tables]
    needs_attrs: bool = False  # gets the engine's attribute columns (an `Attrs`)
    needs_engine: bool = False  # gets the engine itself (`engine=`), for its arrays
    reads_curation: bool = False  # reads tags/metadata whatever the query
    ranges: Callable[..., Ranges] | None = None  # its histograms' value ranges (binned insights only)
    derived: tuple[str, ...] = ()  # derived per-version tables it reads (built on first use)


INSIGHTS: dict[str, InsightKind] = {k.name: k for k in (
    InsightKind("classes", "Class distribution", distributions.classes),
    InsightKind("tags", "Tags", distributions.tags, reads_curation=True),
    InsightKind("metadata", "Metadata", distributions.metadata, reads_curation=True,
                ranges=distributions.metadata_ranges),
    InsightKind("resolution", "Image resolution", distributions.resolution, ranges=distributions.resolution_ranges),
    InsightKind("boxes", "Boxes", geometry.boxes, ranges=geometry.box_ranges, derived=(derived.BOX, derived.BOX_RANGES)),
    InsightKind("attributes", "Attributes", geometry.attributes, needs_attrs=True, derived=(derived.ATTR,)),
    InsightKind("cross", "Cross-analysis", cross.cross, needs_attrs=True, needs_engine=True, reads_curation=True,
                derived=(derived.ATTR, derived.COOC)),
    InsightKind("issues", "Data issues", cross.issues),
)}
BASIC = ("classes", "resolution", "boxes")  # precomputed when a version becomes READY


def kind(name: str) -> InsightKind:
    if name not in INSIGHTS:
        raise InvalidRequest(f"unknown insight {name!r}; known: {', '.join(INSIGHTS)}")
    return INSIGHTS[name]


def reads_curation(name: str, plan: Plan) -> bool:
    """Whether the answer can change with the curation rows: the insight reads them, or the query does."""
    return kind(name).reads_curation or plan.reads_curation


def run(engine: VersionEngine, plan: Plan, name: str, settings: InsightSettings) -> Tables:
    """Compute one insight over the images matching a bound query in `engine`."""
    with subset_cursor(engine, plan) as cur:
        return run_on(cur, engine, name, settings)


def run_on(cur: duckdb.DuckDBPyConnection, engine: VersionEngine, name: str, settings: InsightSettings,
           ranges: Ranges | None = None) -> Tables:
    """One insight on an open subset cursor; a binned insight bins on `ranges` when given (else its own)."""
    k = kind(name)
    derived.ensure(engine, *k.derived)
    conf = settings.to_dict()
    extra: dict[str, Any] = {"ranges": ranges} if k.ranges is not None and ranges is not None else {}
    if k.needs_engine:
        extra["engine"] = engine
    if k.needs_attrs:
        return k.run(cur, conf, attrs_of(engine), **extra)
    return k.run(cur, conf, **extra)


def attrs_of(engine: VersionEngine) -> Attrs:
    """The engine's extracted attribute columns, and whether the derived codes can count them."""
    return Attrs(dict(engine.layout.attr_columns), coded=derived.has_attr_codes(engine),
                 joint=derived.joint_attributes(engine))


def ranges_on(cur: duckdb.DuckDBPyConnection, engine: VersionEngine, name: str, settings: InsightSettings) -> Ranges:
    """The value ranges of a binned insight's histograms on an open subset cursor (empty for the others)."""
    k = kind(name)
    if k.ranges is None:
        return {}
    derived.ensure(engine, *k.derived)
    return k.ranges(cur, settings.to_dict())
