"""The process-wide handle: settings, catalog and storage, opened once and shared."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from dsgen_core.catalog.db import Catalog
from dsgen_core.config import Settings
from dsgen_core.cvat_sync.secret_store import seal_plain_secrets
from dsgen_core.lru import Lru
from dsgen_core.secret_box import load_box
from dsgen_core.storage import LocalStorage, Storage

ENGINES = 4  # version engines kept (loading one costs ~1 s at 118k images, a query ms)
INSIGHT_RESULTS = 256  # insight results kept in front of their catalog rows
SANDBOXES = 2  # SQL sandboxes kept (each holds whole versions in memory)


@dataclass
class App:
    """Owns what one installation's processes share: settings, catalog, storage, and what is expensive to
    build again (search engines by version id, insight results, SQL sandboxes)."""

    settings: Settings
    catalog: Catalog
    storage: Storage
    heartbeat_seconds: float = 2.0
    stale_seconds: float = 30.0
    engines: Lru[int, Any] = field(default_factory=lambda: Lru(ENGINES))
    insight_results: Lru[tuple[int, str], Any] = field(default_factory=lambda: Lru(INSIGHT_RESULTS))
    sandboxes: Lru[Any, Any] = field(default_factory=lambda: Lru(SANDBOXES, one_build_at_a_time=True))

    @classmethod
    def open(cls, settings: Settings | None = None, migrate: bool = True) -> App:
        """Open (and by default migrate) the installation that the environment points at."""
        settings = settings or Settings.from_env()
        settings.ensure_dirs()
        catalog = Catalog(settings.catalog_url)
        if migrate:
            catalog.migrate()
        load_box(settings)  # the first start creates the secret key file (unless DSGEN_SECRET_KEY is set)
        app = cls(
            settings=settings,
            catalog=catalog,
            storage=LocalStorage(settings.storage_root),
            heartbeat_seconds=float(os.environ.get("DSGEN_HEARTBEAT_SECONDS", "2")),
            stale_seconds=float(os.environ.get("DSGEN_JOB_STALE_SECONDS", "30")),
        )
        if migrate:
            seal_plain_secrets(app)  # secrets an older dsgen stored in plain text
        return app

    def close(self) -> None:
        self.catalog.dispose()
