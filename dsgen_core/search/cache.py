"""Process-wide cache of version engines: loading a version costs ~1 s at 118k images, a query ms."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from dsgen_core.search.engine import VersionEngine

MAX_ENGINES = 4
_engines: OrderedDict[tuple[str, int], VersionEngine] = OrderedDict()
_lock = threading.Lock()
_loading: dict[tuple[str, int], threading.Lock] = {}


def engine_for(catalog_url: str, version_id: int, folder: Path, split: str | None) -> VersionEngine:
    """The engine of a version (built on first use, least recently used ones dropped)."""
    key = (catalog_url, int(version_id))
    with _lock:
        eng = _engines.get(key)
        if eng is not None and eng.folder == folder:
            _engines.move_to_end(key)
            return eng
        gate = _loading.setdefault(key, threading.Lock())
    with gate:  # one thread builds, the others wait for it
        with _lock:
            eng = _engines.get(key)
            if eng is not None and eng.folder == folder:
                return eng
        eng = VersionEngine(version_id, folder, split)
        with _lock:
            _engines[key] = eng
            while len(_engines) > MAX_ENGINES:
                _engines.popitem(last=False)  # no close(): a thread may still be reading it
        return eng


def cached(catalog_url: str, version_id: int) -> VersionEngine | None:
    with _lock:
        return _engines.get((catalog_url, int(version_id)))


def forget(catalog_url: str | None = None) -> None:
    """Drop cached engines (all, or those of one catalog)."""
    with _lock:
        for key in [k for k in _engines if catalog_url is None or k[0] == catalog_url]:
            del _engines[key]
