"""The search DSL: `tag:car width>1024 category:person>=3` → parameterized DuckDB SQL.

See docs/query-dsl.md for the language; compiler.py for the relations the SQL expects.
"""

from dsgen_core.query.ast import Node, QueryError
from dsgen_core.query.compiler import (
    CompiledQuery,
    Compiler,
    compile_query,
    field_names,
    images_sql,
    page_sql,
)
from dsgen_core.query.parser import parse

__all__ = [
    "CompiledQuery",
    "Compiler",
    "Node",
    "QueryError",
    "compile_query",
    "field_names",
    "images_sql",
    "page_sql",
    "parse",
]
