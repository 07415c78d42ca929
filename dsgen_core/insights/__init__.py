"""Insights: statistics of any DSL subset of a version (classes, tags, metadata, resolution, boxes,
attributes, cross-analysis, data issues), optionally side by side, computed in the version's search
engine and cached per version and curation state. Streamlit-free; pages draw the returned tables."""

from typing import Any

__all__ = ["BASIC", "INSIGHTS", "InsightSettings", "Subset"]


def __getattr__(name: str) -> Any:
    """The registry's names, imported on first use (it pulls in polars; the job kind must not)."""
    if name in __all__:
        from dsgen_core.insights import registry

        return getattr(registry, name)
    raise AttributeError(name)
