"""The search DSL: `tag:car width>1024 category:person>=3` → a bound plan → parameterized DuckDB SQL or masks.

See docs/query-dsl.md for the language; plan.py for binding; compiler.py for the relations the SQL expects.
"""

from dsgen_core.query.ast import Node, QueryError
from dsgen_core.query.compiler import (
    GENERIC,
    CompiledQuery,
    Compiler,
    TableLayout,
    compile_query,
    images_sql,
    page_sql,
)
from dsgen_core.query.parser import parse
from dsgen_core.query.plan import Leaf, Plan, bind, field_names

__all__ = [
    "GENERIC",
    "CompiledQuery",
    "Compiler",
    "Leaf",
    "Node",
    "Plan",
    "QueryError",
    "TableLayout",
    "bind",
    "compile_query",
    "field_names",
    "images_sql",
    "page_sql",
    "parse",
]
