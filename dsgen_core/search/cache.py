"""A version's search engine, kept by the App: loading a version costs ~1 s at 118k images, a query ms."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dsgen_core.search.engine import VersionEngine

if TYPE_CHECKING:
    from dsgen_core.app import App


def engine_for(app: App, version_id: int, folder: Path, split: str | None) -> VersionEngine:
    """The engine of a version (built on first use; least recently used ones dropped by the App)."""
    return app.engines.get_or_build(int(version_id), lambda: VersionEngine(version_id, folder, split),
                                    valid=lambda eng: eng.folder == folder)
