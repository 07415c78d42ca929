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


def _seed_first_schema_rows(conn) -> None:  # noqa: ANN001
    """A user, a group and a READY version (ids 1), written with plain SQL as an old catalog holds them."""
    from sqlalchemy import text

    conn.execute(text("INSERT INTO users (id, username, is_admin, is_active, created_at) "
                      "VALUES (1, 'old', true, true, '2026-01-01')"))
    conn.execute(text("INSERT INTO dataset_groups (id, name, description, dataset_type, modality, task_types, "
                      "format, owner_id, visibility, created_at) VALUES (1, 'g', '', 'RAW', 'image', '[]', "
                      "'coco', 1, 'private', '2026-01-01')"))
    conn.execute(text("INSERT INTO dataset_versions (id, group_id, split, version, status, num_images, "
                      "num_annotations, num_categories, in_place, created_at) "
                      "VALUES (1, 1, 'train', '1.0.0', 'READY', 3, 4, 2, false, '2026-01-01')"))


def test_upgrade_keeps_rows_written_under_the_first_schema(catalog_url):
    """A catalog with data at revision 0001 upgrades in place (SQLite: no table rebuild)."""
    from alembic import command

    from dsgen_core.catalog.db import alembic_config

    cat = Catalog(catalog_url)
    cfg = alembic_config(cat.engine)
    with cat.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    with cat.engine.begin() as conn:
        _seed_first_schema_rows(conn)
    cat.migrate()
    with cat.session() as s:
        g = s.get(DatasetGroup, 1)
        assert g.name == "g" and g.org_id is None and len(g.versions) == 1
        assert s.get(DatasetVersion, 1).num_images == 3
    with cat.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    cat.dispose()


def test_processes_starting_together_on_a_fresh_catalog_all_get_the_schema(catalog_url, tmp_path):
    """Web app, worker and CLI may all open a new catalog at once; none may fail on the migration or
    on creating the first admin."""
    import subprocess
    import sys

    go = tmp_path / "go"
    code = (
        "import sys, time, pathlib\n"
        "from dsgen_core.catalog.db import Catalog, HEAD_REVISIONS, current_revisions\n"
        "go = pathlib.Path(sys.argv[2])\n"
        "while not go.exists(): time.sleep(0.005)\n"
        "c = Catalog(sys.argv[1]); c.migrate()\n"
        "assert current_revisions(c.engine) == HEAD_REVISIONS\n"
        "from dsgen_core.users import ensure_admin\n"
        "assert ensure_admin(c)[0].username == 'admin'\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, catalog_url, str(go)], stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    go.touch()
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors


def test_tag_rows_of_revision_0003_become_tag_ops(catalog_url):
    """Per-image tag rows written before tags became an op log carry over: present tags become one op
    per (version, tag) at the version's sequence number, tombstones are dropped."""
    from alembic import command
    from sqlalchemy import text

    from dsgen_core.catalog.db import alembic_config
    from dsgen_core.curation import store

    cat = Catalog(catalog_url)
    cfg = alembic_config(cat.engine)
    with cat.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
    with cat.engine.begin() as conn:
        _seed_first_schema_rows(conn)
        conn.execute(text("INSERT INTO curation_seqs (version_id, seq) VALUES (1, 7)"))
        for image_id, tag, deleted, seq in [(3, "car", False, 2), (1, "car", False, 5), (2, "car", True, 6),
                                            (2, "night", False, 7)]:
            conn.execute(text("INSERT INTO image_tags (version_id, image_id, tag, deleted, seq, updated_at) "
                              "VALUES (1, :i, :t, :d, :s, '2026-01-01')"), {"i": image_id, "t": tag, "d": deleted,
                                                                          "s": seq})
    cat.migrate()
    with cat.session() as s:
        assert {t: ids.tolist() for t, ids in store.tag_state(s, 1).items()} == {"car": [1, 3], "night": [2]}
        assert store.tag_ops_since(s, 1, 7) == []  # a reader at sequence 7 had these already
    with cat.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    cat.dispose()


def test_migration_history_is_one_line_of_files_that_import_no_product_code():
    """Migrations must replay the same way whatever the product code becomes."""
    import ast

    from alembic.script import ScriptDirectory

    from dsgen_core.catalog.db import MIGRATIONS_DIR, alembic_config, make_engine

    script = ScriptDirectory.from_config(alembic_config(make_engine("sqlite://")))
    assert len(script.get_heads()) == 1
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] == "dsgen_core" for n in names), f"{path.name} imports {names}"


def test_tag_ops_migration_encodes_id_sets_as_the_product_reads_them():
    import importlib.util

    from dsgen_core.catalog.db import MIGRATIONS_DIR
    from dsgen_core.curation import idset

    spec = importlib.util.spec_from_file_location("m0006", MIGRATIONS_DIR / "versions" / "0006_tag_ops.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ids = [3, 7, 8, 1000, 2**40]
    assert mod._encode_ids(ids) == idset.encode(idset.as_ids(ids))
    assert idset.decode(mod._encode_ids(ids)).tolist() == ids


def test_lru_builds_once_for_many_threads_and_forgets_the_oldest():
    import threading
    import time

    from dsgen_core.lru import Lru

    cache: Lru[str, list] = Lru(2)
    builds: list[str] = []

    def build(key: str) -> list:
        builds.append(key)
        time.sleep(0.05)
        return [key]

    got: list = []
    threads = [threading.Thread(target=lambda: got.append(cache.get_or_build("a", lambda: build("a"))))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert builds == ["a"] and all(g is got[0] for g in got)
    cache.get_or_build("b", lambda: build("b"))
    cache.get("a")  # a is now the most recent
    cache.get_or_build("c", lambda: build("c"))
    assert cache.get("b") is None and cache.get("a") == ["a"] and len(cache) == 2
    assert cache.get_or_build("a", lambda: build("a2"), valid=lambda v: False) == ["a2"]
