"""The statement gate: exactly one SELECT (or EXPLAIN) — the first line of defence before the locked
DuckDB configuration, and the one that gives the clearest message."""

from __future__ import annotations

import duckdb

from dsgen_core.errors import InvalidRequest

ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
MAX_SQL_CHARS = 100_000


class SqlRefused(InvalidRequest):
    """The SQL was not run: not a single read-only query, or it tried to reach outside the sandbox."""


def check_statement(sql: str) -> str:
    """Return the single statement's text, or refuse with a message naming what was wrong."""
    if not isinstance(sql, str) or not sql.strip():
        raise SqlRefused("write a SELECT query")
    if len(sql) > MAX_SQL_CHARS:
        raise SqlRefused(f"the query is {len(sql):,} characters long; the limit is {MAX_SQL_CHARS:,}")
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise SqlRefused(f"SQL syntax error: {_first_line(exc)}") from None
    if len(statements) != 1:
        raise SqlRefused(f"run one statement at a time (found {len(statements)})")
    kind = statements[0].type
    if kind not in ALLOWED:
        name = getattr(kind, "name", str(kind))
        raise SqlRefused(f"only read-only queries (SELECT, WITH … SELECT, EXPLAIN) run here; {name} statements "
                         "are refused (no writes, settings, ATTACH, COPY, INSTALL/LOAD or PRAGMA)")
    return statements[0].query


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
