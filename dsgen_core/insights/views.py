"""Saved insight views: validation and conversion; the facade checks who may see or change one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dsgen_core.catalog.insight_models import InsightView
from dsgen_core.errors import InvalidRequest
from dsgen_core.insights.registry import INSIGHTS, InsightSettings, Subset

MAX_SUBSETS = 4
MAX_NAME = 200
INSIGHTS_PATH = "/insights"


@dataclass
class ViewInfo:
    id: int
    name: str
    owner: str
    version_id: int
    subsets: list[Subset]
    charts: list[str]
    settings: dict[str, Any]
    shared: bool
    created_at: datetime
    updated_at: datetime

    @property
    def link(self) -> str:
        """The page address that opens the view (works for whoever may see it)."""
        return view_link(self.id)


def view_link(view_id: int) -> str:
    return f"{INSIGHTS_PATH}?view={int(view_id)}"


def check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME:
        raise InvalidRequest(f"view name {name!r}: give 1–{MAX_NAME} characters")
    return name.strip()


def check_subsets(subsets: list[Subset] | list[dict[str, Any]]) -> list[Subset]:
    out = [s if isinstance(s, Subset) else Subset(int(s["version_id"]), str(s.get("query") or ""), s.get("label"))
           for s in subsets]
    if not 1 <= len(out) <= MAX_SUBSETS:
        raise InvalidRequest(f"a view compares 1–{MAX_SUBSETS} subsets, not {len(out)}")
    return out


def check_charts(charts: list[str]) -> list[str]:
    bad = [c for c in charts if c not in INSIGHTS]
    if bad or not charts:
        raise InvalidRequest(f"charts {bad or '[]'}: choose some of {', '.join(INSIGHTS)}")
    return list(dict.fromkeys(charts))


def check_settings(settings: dict[str, Any] | None) -> dict[str, Any]:
    return InsightSettings.from_dict(settings).to_dict()


def subsets_json(subsets: list[Subset]) -> list[dict[str, Any]]:
    return [{"version_id": s.version_id, "query": s.query, "label": s.label} for s in subsets]


def to_info(v: InsightView, owner: str) -> ViewInfo:
    return ViewInfo(id=v.id, name=v.name, owner=owner, version_id=v.version_id,
                    subsets=check_subsets(v.subsets), charts=list(v.charts), settings=dict(v.settings),
                    shared=bool(v.shared), created_at=v.created_at, updated_at=v.updated_at)
