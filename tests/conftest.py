"""Shared fixtures: a fresh installation (data folder + catalog) per test, on SQLite or PostgreSQL.

Set DSGEN_TEST_PG_URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres) to run the
suite on PostgreSQL: each test then gets its own freshly created database. Tests that never ask for
a catalog (`catalog_url`, directly or through `dsgen_env`, `api`, …) would only repeat the SQLite
pass, so they are deselected there; DSGEN_TEST_PG_ALL=1 runs them anyway.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

PG_ADMIN_URL = os.environ.get("DSGEN_TEST_PG_URL")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not PG_ADMIN_URL or os.environ.get("DSGEN_TEST_PG_ALL") == "1":
        return
    keep = [item for item in items if "catalog_url" in getattr(item, "fixturenames", ())]
    dropped = [item for item in items if "catalog_url" not in getattr(item, "fixturenames", ())]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def backend_name() -> str:
    return "postgresql" if PG_ADMIN_URL else "sqlite"


@pytest.fixture
def catalog_url(tmp_path: Path) -> Iterator[str]:
    """A catalog URL for an empty database of the backend under test."""
    if not PG_ADMIN_URL:
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    name = f"dsgen_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def dsgen_env(tmp_path: Path, catalog_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment of a fresh installation; subprocesses (workers, the CLI, streamlit) inherit it."""
    home = tmp_path / "home"
    env = {
        "DSGEN_HOME": str(home),
        "DSGEN_CATALOG_URL": catalog_url,
        "DSGEN_ADMIN_PASSWORD": "test-admin-pw",
        "DSGEN_HEARTBEAT_SECONDS": "0.5",
        "DSGEN_JOB_STALE_SECONDS": "3",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
def api(dsgen_env: dict[str, str]):
    from dsgen_core.api import Dsgen

    dsgen = Dsgen.open()
    yield dsgen
    dsgen.app.close()


@pytest.fixture
def admin(api):
    return api.default_actor
