"""The catalog schema comes from migrations and matches the models, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from dsgen_core.api import _next_version
from dsgen_core.catalog.db import Catalog
from dsgen_core.catalog.models import Base, DatasetGroup, DatasetVersion


def test_migrations_match_models(catalog_url):
    cat = Catalog(catalog_url)
    cat.migrate()
    cat.migrate()  # idempotent
    with cat.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    tables = set(inspect(cat.engine).get_table_names())
    assert {"users", "dataset_groups", "dataset_versions", "jobs", "audit_log", "lineage_edges", "workers"} <= tables
    cat.dispose()


def test_head_revisions_constant_is_alembics_heads(catalog_url):
    from alembic.script import ScriptDirectory

    from dsgen_core.catalog.db import HEAD_REVISIONS, alembic_config, current_revisions

    cat = Catalog(catalog_url)
    assert set(ScriptDirectory.from_config(alembic_config(cat.engine)).get_heads()) == HEAD_REVISIONS
    assert current_revisions(cat.engine) == frozenset()
    cat.migrate()
    assert current_revisions(cat.engine) == HEAD_REVISIONS
    cat.dispose()


def test_version_unique_per_group_split(api, admin):
    with pytest.raises(IntegrityError):
        with api.app.catalog.session() as s:
            g = DatasetGroup(name="u", owner_id=admin.id, task_types=[])
            s.add(g)
            s.flush()
            s.add(DatasetVersion(group_id=g.id, split="train", version="1.0.0"))
            s.add(DatasetVersion(group_id=g.id, split="train", version="1.0.0"))
            s.flush()


def test_next_version():
    assert _next_version([]) == "1.0.0"
    assert _next_version(["1.0.0"]) == "1.1.0"
    assert _next_version(["1.9.0", "1.10.0", "1.2.0"]) == "1.11.0"


def test_first_start_creates_admin_without_default_password(dsgen_env, monkeypatch):
    from argon2 import PasswordHasher

    from dsgen_core.api import Dsgen
    from dsgen_core.catalog.models import User

    monkeypatch.delenv("DSGEN_ADMIN_PASSWORD")
    api = Dsgen.open()
    assert api.admin_password and len(api.admin_password) >= 12
    with api.app.catalog.session() as s:
        user = s.get(User, api.default_actor.id)
        assert user.is_admin and user.password_hash != api.admin_password
        assert PasswordHasher().verify(user.password_hash, api.admin_password)
    again = Dsgen.open()
    assert again.admin_password is None and again.default_actor == api.default_actor
