"""Engine, sessions and migrations for the catalog, on SQLite or PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The migration head (one linear history; alembic upgrades to "heads"). A test
# checks this against alembic's script directory; knowing it lets a process skip loading alembic
# (~150 ms) when the catalog is already current.
_MIGRATION_LOCK = 0x64736765  # "dsge": the advisory lock key of catalog migrations
HEAD_REVISIONS = frozenset({"0010"})


def sqlite_busy_timeout() -> float:
    """Seconds a SQLite write waits for another process's write lock (DSGEN_SQLITE_BUSY_TIMEOUT, default 60)."""
    return float(os.environ.get("DSGEN_SQLITE_BUSY_TIMEOUT") or 60)


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL and a busy timeout so worker, UI and CLI can share the file."""
    if url.startswith("sqlite"):
        busy = sqlite_busy_timeout()
        engine = create_engine(url, connect_args={"timeout": busy, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={int(busy * 1000)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the catalog schema to the newest migration (a no-op, without alembic, when it is).

    Several processes may start at once on a fresh catalog (web app, workers, CLI): one migrates while
    the others wait — a file lock beside a SQLite catalog, an advisory lock on PostgreSQL — and then
    find the schema current."""
    if current_revisions(engine) == HEAD_REVISIONS:
        return
    from alembic import command

    cfg = alembic_config(engine)
    with _sqlite_migration_lock(engine):
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "heads")


@contextmanager
def _sqlite_migration_lock(engine: Engine) -> Iterator[None]:
    """An exclusive lock file next to a SQLite catalog file (SQLite runs DDL outside transactions)."""
    db = engine.url.database if engine.dialect.name == "sqlite" else None
    if not db or db == ":memory:":
        yield
        return
    import fcntl

    with open(f"{db}.migrate.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def current_revisions(engine: Engine) -> frozenset[str]:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return frozenset()
        return frozenset(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


class Catalog:
    """The catalog connection of one process: an engine and a session factory."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def migrate(self) -> None:
        upgrade(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on error."""
        s = self._sessions()
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    def dispose(self) -> None:
        self.engine.dispose()
