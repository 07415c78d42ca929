"""Ad-hoc DuckDB SQL over the versions a user may read, sandboxed: only the permitted rows are in the
database (loaded before the configuration is locked), file/network access is off, one read-only
SELECT per run, with a time limit and a row limit. See docs/sql.md."""

from dsgen_core.sql_sandbox.guard import SqlRefused, check_statement
from dsgen_core.sql_sandbox.sandbox import Sandbox, SqlResult, VersionSource

__all__ = ["Sandbox", "SqlRefused", "SqlResult", "VersionSource", "check_statement"]
