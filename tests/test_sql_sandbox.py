"""The SQL page's sandbox: every escape in the issue is refused with a clear message, another user's
private dataset is unreachable by any name, and limits hold. Real catalog, real Parquet."""

from __future__ import annotations

import io
import os
import sys

import pyarrow.parquet as pq
import pytest
from test_curation_support import make_user, make_version
from test_insights_support import InsightsApi

from dsgen_core.errors import InvalidRequest, NotFound
from dsgen_core.sql_sandbox import SqlRefused


@pytest.fixture
def iapi(dsgen_env):
    api = InsightsApi.open()
    yield api
    api.app.close()


@pytest.fixture
def two_users(iapi, tmp_path):
    """alice owns a private group; bob owns another one (with a tag only he wrote)."""
    alice, bob = make_user(iapi, "alice"), make_user(iapi, "bob")
    mine = make_version(iapi, alice.id, group="alice-data")
    theirs = make_version(iapi, bob.id, group="bob-secret")
    iapi.add_tags(bob, theirs, 1, "bob-only-tag")
    return alice, bob, mine, theirs


ESCAPES = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM glob('/*')",
    "SELECT * FROM read_json_auto('/etc/hostname')",
]
REFUSED_STATEMENTS = [
    "COPY images TO '/tmp/x.csv'",
    "ATTACH '/tmp/other.db' AS o",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "RESET enable_external_access",
    "PRAGMA enable_external_access = true",
    "CREATE TABLE x AS SELECT 1",
    "CREATE VIEW v AS SELECT * FROM read_csv('/etc/passwd')",
    "INSERT INTO tags VALUES (1, 1, 'x')",
    "DROP TABLE images",
    "EXPORT DATABASE '/tmp/dump'",
    "SELECT 1; SELECT 2",
    "DETACH memory",
    "USE system",
    "CALL duckdb_tables()",
]


def test_file_and_statement_escapes_are_refused(iapi, two_users, tmp_path):
    alice, _, mine, _ = two_users
    lake_file = next(iapi.app.settings.lake_root.rglob("images.parquet"))
    direct = [f"SELECT * FROM read_parquet('{lake_file}')", f"SELECT * FROM parquet_scan('{lake_file}')"]  # noqa: S608
    for sql in [*ESCAPES, *direct]:
        with pytest.raises(SqlRefused, match="access are disabled|Table with name /etc/passwd does not exist"):
            iapi.run_sql(alice, sql)
    for sql in REFUSED_STATEMENTS:
        with pytest.raises(SqlRefused, match="only read-only queries|one statement"):
            iapi.run_sql(alice, sql)
    with pytest.raises(SqlRefused, match="syntax error"):
        iapi.run_sql(alice, "SELEC 1")
    # behind the statement gate, DuckDB's own lock holds too
    iapi.run_sql(alice, "SELECT 1")
    con = iapi.app.sandboxes.values()[0].raw()
    for sql in ("SET enable_external_access = true", "SET lock_configuration = false", "RESET enable_external_access",
                "SET python_enable_replacements = true", "SET allowed_directories = ['/']"):
        with pytest.raises(Exception, match="configuration has been locked|Cannot change"):
            con.execute(sql)
    with pytest.raises(Exception, match="disabled"):
        con.execute("COPY images TO '/tmp/escape.csv'")
    assert iapi.run_sql(alice, "SELECT current_setting('enable_external_access') AS x").table.to_pylist() \
        == [{"x": False}]


def test_private_data_of_others_is_unreachable(iapi, two_users):
    alice, bob, mine, theirs = two_users
    assert iapi.run_sql(alice, "SELECT DISTINCT version_id FROM images").table.column(0).to_pylist() == [mine]
    assert iapi.run_sql(alice, "SELECT version_id FROM versions").table.column(0).to_pylist() == [mine]
    assert iapi.run_sql(alice, "SELECT count(*) AS n FROM tags WHERE tag = 'bob-only-tag'").table.to_pylist() \
        == [{"n": 0}]
    tables = iapi.run_sql(alice, "SELECT database_name, table_name FROM duckdb_tables() ORDER BY 2").table
    assert tables.column("table_name").to_pylist() == sorted(
        ["annotations", "categories", "images", "metadata", "tags", "versions"])
    assert iapi.run_sql(alice, "SELECT count(*) AS n FROM duckdb_databases() WHERE NOT internal").table.to_pylist() \
        == [{"n": 1}]
    with pytest.raises(NotFound, match=f"version {theirs} not found"):
        iapi.run_sql(alice, "SELECT 1", version_ids=[theirs])
    bob_lake = str(iapi.app.settings.lake_root)
    with pytest.raises(SqlRefused, match="disabled"):
        iapi.run_sql(alice, f"SELECT * FROM read_parquet('{bob_lake}/**/*.parquet')")  # noqa: S608 - the attack
    with pytest.raises(SqlRefused):
        iapi.run_sql(alice, "SELECT * FROM bob_secret.images")
    # bob sees his own; granted, alice sees both (the sandbox is rebuilt for the new set)
    assert iapi.run_sql(bob, "SELECT count(*) AS n FROM tags WHERE tag = 'bob-only-tag'").table.to_pylist() \
        == [{"n": 1}]
    iapi.grant(bob, "bob-secret", "alice", "viewer")
    got = iapi.run_sql(alice, "SELECT DISTINCT version_id FROM images ORDER BY 1").table.column(0).to_pylist()
    assert got == sorted([mine, theirs])
    iapi.revoke(bob, "bob-secret", "alice")
    assert iapi.run_sql(alice, "SELECT DISTINCT version_id FROM images").table.column(0).to_pylist() == [mine]


def test_limits_results_and_saved_queries(iapi, two_users):
    alice, _, mine, _ = two_users
    res = iapi.run_sql(alice, "SELECT range AS n FROM range(100000)", row_limit=250)
    assert res.table.num_rows == 250 and res.truncated
    with pytest.raises(SqlRefused, match="longer than 0.3 s"):
        iapi.run_sql(alice, "SELECT count(*) FROM range(100000000000) a", timeout=0.3)
    with pytest.raises(InvalidRequest, match="row limit"):
        iapi.run_sql(alice, "SELECT 1", row_limit=0)
    res = iapi.run_sql(alice, "SELECT i.file_name, count(a.annotation_id) AS boxes FROM images i LEFT JOIN "
                              "annotations a USING (version_id, image_id) GROUP BY ALL ORDER BY 1")
    assert not res.truncated and res.columns == ["file_name", "boxes"]
    csv = iapi.sql_result_csv(res).decode()
    assert csv.splitlines()[0] == '"file_name","boxes"' and len(csv.splitlines()) == res.table.num_rows + 1
    back = pq.read_table(io.BytesIO(iapi.sql_result_parquet(res)))
    assert back.equals(res.table)
    qid = iapi.save_query(alice, "boxes per file", "SELECT 1 AS one", [mine])
    assert iapi.save_query(alice, "boxes per file", "SELECT 2 AS two") == qid
    assert [q["sql"] for q in iapi.list_queries(alice)] == ["SELECT 2 AS two"]
    with pytest.raises(SqlRefused):
        iapi.save_query(alice, "bad", "DROP TABLE images")
    with pytest.raises(NotFound):
        iapi.delete_query(make_user(iapi, "carol"), qid)
    iapi.delete_query(alice, qid)
    assert iapi.list_queries(alice) == []


def test_refused_queries_and_settings_never_show_server_paths(iapi, two_users, tmp_path, monkeypatch):
    """DuckDB names the server user's home folder (extensions, secrets) in errors and in duckdb_settings()."""
    alice = two_users[0]
    home = tmp_path / "home-of-the-server-user"
    monkeypatch.setenv("HOME", str(home))  # DuckDB reads it when the sandbox connects (first query)
    iapi.app.sandboxes.clear()
    server = [str(home), str(iapi.app.settings.home), sys.prefix, os.getcwd(), "/root"]
    said = []
    for sql in ("FROM duckdb_extensions()", "FROM duckdb_secrets()", "FROM which_secret('s3://b/k', 's3')",
                "SELECT * FROM read_csv('~/notes.csv')", "SELECT * FROM 'nope.parquet'"):
        with pytest.raises(SqlRefused) as exc:
            iapi.run_sql(alice, sql)
        said.append(str(exc.value))
    settings = iapi.run_sql(alice, "SELECT name, value FROM duckdb_settings()").table.to_pylist()
    said += [f"{r['name']}={r['value']}" for r in settings]
    leaks = [line for line in said for path in server if path in line]
    assert not leaks, leaks
    assert "~/notes.csv" in said[3]  # what the user wrote is still quoted back
    assert "<server path>" in said[0]
