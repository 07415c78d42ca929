"""One sandboxed in-memory DuckDB holding copies of the permitted versions' tables.

Views over read_parquet would need file access at query time, so the data is copied into tables
before `enable_external_access=false` and `lock_configuration=true` are set (see docs/sql.md for what
that blocks in this DuckDB version, as tested in tests/test_sql_sandbox.py).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from dsgen_core.lake.views import scan_params, scan_sql
from dsgen_core.sql_sandbox.guard import SqlRefused, check_statement

NOWHERE = "/dsgen-sql-sandbox"  # not a real folder: where DuckDB's per-user folders point inside the sandbox
TABLES = ("versions", "images", "annotations", "categories", "tags", "metadata")
LOCKDOWN = (  # order matters: lock_configuration last
    "SET threads = 2",
    "SET memory_limit = '{memory}'",
    "SET temp_directory = ''",
    "SET python_enable_replacements = false",
    "SET autoinstall_known_extensions = false",
    "SET autoload_known_extensions = false",
    "SET allow_community_extensions = false",
    # DuckDB derives these from the server user's home folder and shows them in duckdb_settings() and in
    # the errors of duckdb_extensions() / duckdb_secrets(): point them at a folder that does not exist.
    f"SET home_directory = '{NOWHERE}'",
    f"SET extension_directory = '{NOWHERE}'",
    f"SET secret_directory = '{NOWHERE}'",
    "SET enable_external_access = false",
    "SET lock_configuration = true",
)
TAG_SCHEMA = pa.schema([("version_id", pa.int64()), ("image_id", pa.int64()), ("tag", pa.string())])
META_SCHEMA = pa.schema([("version_id", pa.int64()), ("image_id", pa.int64()), ("key", pa.string()),
                         ("value_type", pa.string()), ("value_str", pa.string()), ("value_num", pa.float64()),
                         ("value_bool", pa.bool_())])


@dataclass
class VersionSource:
    """What to load for one version: its lake folder and its live curation rows."""

    version_id: int
    folder: Path
    split: str
    tags: list[tuple[int, str]] = field(default_factory=list)  # image_id, tag
    metadata: list[tuple] = field(default_factory=list)  # image_id, key, type, str, num, bool


@dataclass
class SqlResult:
    table: pa.Table
    truncated: bool  # more rows than the row limit: only the first ones are here
    seconds: float
    row_limit: int

    @property
    def columns(self) -> list[str]:
        return list(self.table.column_names)


class Sandbox:
    """Build once (the permitted data only), then run user queries on fresh cursors."""

    def __init__(self, sources: list[VersionSource], versions: pa.Table, memory: str = "4GB") -> None:
        self.version_ids = [s.version_id for s in sources]
        self._con = duckdb.connect(":memory:")
        self._load(sources, versions)
        for statement in LOCKDOWN:
            self._con.execute(statement.format(memory=memory.replace("'", "")))

    def _load(self, sources: list[VersionSource], versions: pa.Table) -> None:
        con = self._con
        con.register("v_src", versions)
        con.execute("CREATE TABLE versions AS SELECT * FROM v_src")
        con.unregister("v_src")
        for n, src in enumerate(sources):
            vid, verb = int(src.version_id), "CREATE TABLE {t} AS" if n == 0 else "INSERT INTO {t}"
            con.execute(f"{verb.format(t='images')} SELECT *, {vid}::BIGINT AS version_id, $split::VARCHAR AS split "  # noqa: S608
                        "FROM read_parquet($i)", {"split": src.split, **scan_params(src.folder, i="images")})
            anns = scan_sql(src.folder, "annotations", "a")
            con.execute(f"{verb.format(t='annotations')} SELECT * EXCLUDE (polygons), len(polygons)::INTEGER AS "  # noqa: S608
                        f"num_polygons, {vid}::BIGINT AS version_id FROM {anns}", scan_params(src.folder, a="annotations"))
            con.execute(f"{verb.format(t='categories')} SELECT *, {vid}::BIGINT AS version_id FROM read_parquet($c)",  # noqa: S608
                        scan_params(src.folder, c="categories"))
        if not sources:  # empty, typed tables so that queries still bind
            con.execute("CREATE TABLE images (version_id BIGINT, image_id BIGINT, file_name VARCHAR, width INTEGER, "
                        "height INTEGER, split VARCHAR)")
            con.execute("CREATE TABLE annotations (version_id BIGINT, annotation_id BIGINT, image_id BIGINT, "
                        "category_id BIGINT)")
            con.execute("CREATE TABLE categories (version_id BIGINT, category_id BIGINT, name VARCHAR)")
        tags = [(s.version_id, i, t) for s in sources for i, t in s.tags]
        meta = [(s.version_id, *r) for s in sources for r in s.metadata]
        con.register("t_src", pa.Table.from_pylist([dict(zip(TAG_SCHEMA.names, r, strict=True)) for r in tags],
                                                   schema=TAG_SCHEMA))
        con.execute("CREATE TABLE tags AS SELECT * FROM t_src ORDER BY version_id, image_id, tag")
        con.unregister("t_src")
        con.register("m_src", pa.Table.from_pylist([dict(zip(META_SCHEMA.names, r, strict=True)) for r in meta],
                                                   schema=META_SCHEMA))
        con.execute("CREATE TABLE metadata AS SELECT * FROM m_src ORDER BY version_id, image_id, key")
        con.unregister("m_src")

    def run(self, sql: str, row_limit: int = 10_000, timeout: float = 10.0) -> SqlResult:
        """Run one read-only query: at most `row_limit` rows, interrupted after `timeout` seconds."""
        text = check_statement(sql)
        cur = self._con.cursor()
        timer = threading.Timer(timeout, cur.interrupt)
        t0 = time.perf_counter()
        timer.start()
        try:
            reader = cur.sql(text).to_arrow_reader(min(max(row_limit, 1), 100_000))
            batches, rows, truncated = [], 0, False
            for batch in reader:
                batches.append(batch)
                rows += batch.num_rows
                if rows > row_limit:
                    truncated = True
                    break
            schema = reader.schema
            table = pa.Table.from_batches(batches, schema=schema).slice(0, row_limit)
        except duckdb.InterruptException:
            raise SqlRefused(f"the query ran longer than {timeout:g} s and was stopped; narrow it down "
                             "(filter, aggregate or LIMIT)") from None
        except duckdb.PermissionException as exc:
            raise SqlRefused("file, network and extension access are disabled on the SQL page: "
                             f"{hide_server_paths(_first_line(exc), text)}") from None
        except duckdb.Error as exc:
            raise SqlRefused(hide_server_paths(_first_line(exc), text)) from None
        finally:
            timer.cancel()
            cur.close()
        return SqlResult(table=table, truncated=truncated, seconds=time.perf_counter() - t0, row_limit=row_limit)

    def raw(self) -> duckdb.DuckDBPyConnection:
        """The locked connection itself (tests probe the DuckDB lock directly, past the statement gate)."""
        return self._con

    def close(self) -> None:
        self._con.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# An absolute path (or ~/…) in a message: after a quote, a blank or a bracket, up to the next of them.
_PATH = re.compile(r"""(?:(?<=["'\s(\[])|^)(?:~|[A-Za-z]:\\|/)[^"'\s)\]]+""")


def hide_server_paths(message: str, sql: str) -> str:
    """Replace the paths in an error that the user did not write themselves (the server's folders)."""
    return _PATH.sub(lambda m: m.group(0) if m.group(0) in sql else "<server path>", message)


def versions_table(rows: list[dict[str, Any]]) -> pa.Table:
    """The `versions` table: every version the user may read, with `loaded` marking those in the tables."""
    schema = pa.schema([("version_id", pa.int64()), ("group_name", pa.string()), ("split", pa.string()),
                        ("version", pa.string()), ("status", pa.string()), ("num_images", pa.int64()),
                        ("num_annotations", pa.int64()), ("num_categories", pa.int64()),
                        ("content_hash", pa.string()), ("created_at", pa.timestamp("us")), ("loaded", pa.bool_())])
    return pa.Table.from_pylist(rows, schema=schema)
