"""Compile a bound query plan into one boolean DuckDB SQL expression over the image alias `i`.

Field names were resolved to a fixed whitelist by `plan.bind`, and every value becomes a named
parameter ($p0, $p1, …): no text typed by the user ever reaches the SQL string.

The SQL runs against these relations (the caller registers them, e.g. as DuckDB views);
rows join their image on (version_id, image_id):

* ``images``      — IMAGES_SCHEMA columns + ``version_id BIGINT`` + ``split VARCHAR``
* ``annotations`` — ANNOTATIONS_SCHEMA columns + ``version_id BIGINT`` (``attributes``: JSON text)
* ``categories``  — CATEGORIES_SCHEMA columns + ``version_id BIGINT``
* ``tags``        — ``(version_id BIGINT, image_id BIGINT, tag VARCHAR)``
* ``metadata``    — ``(version_id BIGINT, image_id BIGINT, key VARCHAR, value_type VARCHAR,
  value_str VARCHAR, value_num DOUBLE, value_bool BOOLEAN)``

A `TableLayout` says what one version's tables precomputed (per-class count columns `c_<id>` on the
images, typed attribute columns `at_<n>`/`an_<n>` on the annotations, one version only); the compiler
then reads those instead. Subclasses may override the relation hooks (`category_exists`, …) too.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Literal as Kind
from typing import NamedTuple

from dsgen_core.query.ast import And, AnnGroup, MatchAll, Node, Not, Or, Range
from dsgen_core.query.plan import (
    ANNOTATION_COLUMNS,
    ANNOTATION_KINDS,
    CATEGORY_COLUMNS,
    IMAGE_COLUMNS,
    METADATA_PREFIX,
    ColumnType,
    Leaf,
    Level,
    Plan,
    bind,
)

SQL_OP = {":": "=", "=": "=", "!=": "<>", ">": ">", ">=": ">=", "<": "<", "<=": "<="}


@dataclass(frozen=True)
class TableLayout:
    """What a single version's search tables precomputed: category ids per name / supercategory (for the
    `c_<id>` count columns) and attribute column numbers (for `at_<n>` / `an_<n>`). The default layout is
    the generic one: several versions, counts and attributes computed from the rows."""

    single_version: bool = False
    by_name: dict[str, list[int]] = field(default_factory=dict)
    by_super: dict[str, list[int]] = field(default_factory=dict)
    count_columns: bool = False
    attr_columns: dict[str, int] = field(default_factory=dict)


GENERIC = TableLayout()


@dataclass
class CompiledQuery:
    where: str  # boolean SQL over alias i
    params: dict[str, object]  # named parameters: con.execute(sql, params)
    plan: Plan

    @property
    def ast(self) -> Node:
        return self.plan.root


class Frag(NamedTuple):
    """A compiled SQL fragment; `nullable` says whether it can evaluate to NULL."""

    sql: str
    nullable: bool


def compile_query(
    query: str | Node | Plan, metadata_keys: Collection[str] = (), *, compiler: type[Compiler] | None = None,
    layout: TableLayout = GENERIC,
) -> CompiledQuery:
    """Bind (if needed) and compile; bare unknown fields are metadata keys only when in `metadata_keys`."""
    plan = query if isinstance(query, Plan) else bind(query, metadata_keys)
    comp = (compiler or Compiler)(layout)
    return CompiledQuery(f"({comp.node(plan.root, 'image').sql})", comp.params, plan)


class Compiler:
    """One compilation: walks a bound tree, collects parameters, emits SQL fragments."""

    def __init__(self, layout: TableLayout = GENERIC) -> None:
        self.layout = layout
        self.params: dict[str, object] = {}

    def param(self, value: object) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return "$" + name

    # -- relations: override these to use other tables (e.g. precomputed counts) --------------
    def image_rows(self, table: str, alias: str) -> str:
        """`FROM`-clause body selecting the rows of `table` that belong to image `i`."""
        if self.layout.single_version:  # one version: image id alone joins (a cheaper hash key)
            return f"{table} {alias} WHERE {alias}.image_id = i.image_id"
        return f"{table} {alias} WHERE {alias}.version_id = i.version_id AND {alias}.image_id = i.image_id"

    def exists(self, table: str, alias: str, cond: str = "") -> str:
        return f"EXISTS (SELECT 1 FROM {self.image_rows(table, alias)}{f' AND ({cond})' if cond else ''})"  # noqa: S608 - whitelisted SQL

    def category_ids(self, column: str, value: str) -> list[int]:
        table = self.layout.by_name if column == "name" else self.layout.by_super
        return table.get(value, [])

    def category_rows(self, column: str, value: str) -> str:
        join = (
            "annotations a JOIN categories c ON c.version_id = a.version_id AND c.category_id = a.category_id"
        )
        return (f"{join} WHERE a.version_id = i.version_id AND a.image_id = i.image_id "
                f"AND c.{column} = {self.param(value)}")

    def category_exists(self, column: str, value: str) -> str:
        """Image `i` has an annotation whose category `column` equals `value`."""
        if self.layout.count_columns:
            ids = self.category_ids(column, value)
            return "(" + " OR ".join(f"i.c_{int(c)} > 0" for c in ids) + ")" if ids else "FALSE"
        return f"EXISTS (SELECT 1 FROM {self.category_rows(column, value)})"  # noqa: S608 - whitelisted SQL

    def category_count(self, column: str, value: str) -> str:
        """Integer SQL: how many annotations of image `i` have that category."""
        if self.layout.count_columns:
            ids = self.category_ids(column, value)
            return "(" + " + ".join(f"i.c_{int(c)}" for c in ids) + ")" if ids else "0"
        return f"(SELECT count(*) FROM {self.category_rows(column, value)})"  # noqa: S608 - whitelisted SQL

    def annotation_category(self, column: str, value: str) -> str:
        """Annotation `a` (inside ann:( … )) has that category."""
        if self.layout.single_version:
            ids = self.category_ids(column, value)
            return f"a.category_id IN ({', '.join(str(int(c)) for c in ids)})" if ids else "FALSE"
        sub = "SELECT c.category_id FROM categories c WHERE c.version_id = a.version_id"
        return f"a.category_id IN ({sub} AND c.{column} = {self.param(value)})"

    def attribute_text(self, key: str) -> str:
        """Text SQL of attribute `key` of annotation `a` (NULL when absent or JSON null)."""
        n = self.layout.attr_columns.get(key)
        if n is not None:
            return f"a.at_{int(n)}"
        return f"json_extract_string(a.attributes, {self.param(json_pointer(key))})"

    def attribute_number(self, key: str) -> str:
        """Numeric SQL of attribute `key` of annotation `a` (NULL when absent or not a number)."""
        n = self.layout.attr_columns.get(key)
        if n is not None:
            return f"a.an_{int(n)}"
        return f"TRY_CAST({self.attribute_text(key)} AS DOUBLE)"

    # -- tree walk ----------------------------------------------------------------------------
    def node(self, node: Node, level: Level) -> Frag:
        if isinstance(node, MatchAll):
            return Frag("TRUE", False)
        if isinstance(node, And | Or):
            parts = [self.node(item, level) for item in node.items]
            glue = " AND " if isinstance(node, And) else " OR "
            return Frag("(" + glue.join(p.sql for p in parts) + ")", any(p.nullable for p in parts))
        if isinstance(node, Not):
            inner = self.node(node.item, level)
            body = f"coalesce({inner.sql}, FALSE)" if inner.nullable else inner.sql
            return Frag(f"(NOT {body})", False)
        if isinstance(node, AnnGroup):
            return self.ann_group(node)
        return self.leaf(node)  # type: ignore[arg-type]

    def ann_group(self, node: AnnGroup) -> Frag:
        rows = f"{self.image_rows('annotations', 'a')} AND ({self.ann_body(node)})"
        if node.count is None:
            return Frag(f"EXISTS (SELECT 1 FROM {rows})", False)  # noqa: S608 - whitelisted SQL
        count = f"(SELECT count(*) FROM {rows})"  # noqa: S608 - whitelisted SQL
        return Frag(f"({count} {SQL_OP[node.count.op]} {self.param(node.count.value.value)})", False)

    def ann_body(self, node: AnnGroup) -> str:
        """The condition of an ann:( … ) group on the single annotation `a`."""
        return self.node(node.body, "annotation").sql

    def leaf(self, leaf: Leaf) -> Frag:
        r, t = leaf.ref, leaf.term
        if leaf.level == "annotation":
            return self.annotation_leaf(leaf)
        if r.kind in ANNOTATION_KINDS:
            return Frag(self.exists("annotations", "a", self.annotation_leaf(leaf).sql), False)
        if r.kind == "image":
            column = IMAGE_COLUMNS[r.name]
            return Frag(self.compare(column.sql, column.type, leaf), column.nullable)
        if r.kind == "metadata":
            return Frag(
                self.exists("metadata", "m", f"m.key = {self.param(r.key)} AND {self.dynamic(leaf, 'm')}"), False
            )
        if r.kind == "set":
            return self.set_term(leaf)
        if r.kind == "none_or_any":
            word = t.value.raw.lower()
            table, alias = ("tags", "t") if r.name == "tags" else ("annotations", "a")
            negate = (word == "none") != (t.op == "!=")
            cond = self.exists(table, alias)
            return Frag(f"(NOT {cond})" if negate else cond, False)
        if r.kind == "has_tags":
            return Frag(self.exists("tags", "t"), False)
        if r.kind == "has_annotations":
            return Frag(self.exists("annotations", "a"), False)
        return Frag(self.exists("metadata", "m", f"m.key = {self.param(r.key)}"), False)  # has_metadata

    def annotation_leaf(self, leaf: Leaf) -> Frag:
        """A condition on the single annotation `a` (inside ann:( … ) or an EXISTS)."""
        r, t = leaf.ref, leaf.term
        if r.kind == "annotation":
            column = ANNOTATION_COLUMNS[r.name]
            return Frag(self.compare(column.sql, column.type, leaf), column.nullable)
        if r.kind == "attr":
            return Frag(self.dynamic(leaf, "a", r.key), True)
        if r.kind == "has_attr":
            return Frag(f"({self.attribute_text(r.key)} IS NOT NULL)", True)
        match = self.annotation_category(CATEGORY_COLUMNS[r.name], t.value.raw)
        if t.op == "!=":  # an annotation without a category is "not person" too
            return Frag(f"(NOT coalesce({match}, FALSE))", False)
        return Frag(match, True)

    # -- comparisons --------------------------------------------------------------------------
    def compare(self, sql: str, type_: ColumnType, leaf: Leaf) -> str:
        """`sql <op> value` for a whitelisted column of a known type."""
        t = leaf.term
        if type_ == "number":
            return self.numeric(sql, leaf)
        negate = t.op == "!="
        if type_ == "bool":
            return f"{sql} {SQL_OP[t.op]} {self.param(t.value.value)}"  # type: ignore[union-attr]
        text = t.value.raw
        if type_ == "glob":
            return f"{'NOT ' if negate else ''}{self.glob(sql, text)}"
        if type_ == "prefix":
            return f"{'NOT ' if negate else ''}starts_with({sql}, {self.param(text.lower())})"
        return f"{sql} {SQL_OP[t.op]} {self.param(text.upper() if type_ == 'upper' else text)}"

    def glob(self, sql: str, pattern: str) -> str:
        """`*text*`, `text*` and `*text` as substring tests (about twice as fast as LIKE), others as LIKE."""
        inner = pattern.strip("*")
        if inner and "*" not in inner and "?" not in inner:
            starred = (pattern.startswith("*"), pattern.endswith("*"))
            func = {(True, True): "contains", (False, True): "starts_with", (True, False): "ends_with"}.get(starred)
            if func:
                return f"{func}({sql}, {self.param(inner)})"
        return f"{sql} LIKE {self.param(glob_to_like(pattern))} ESCAPE '\\'"

    def numeric(self, sql: str, leaf: Leaf) -> str:
        t = leaf.term
        value = t.value
        if isinstance(value, Range):
            bounds = [f"{sql} >= {self.param(value.lo)}"] if value.lo is not None else []
            bounds += [f"{sql} <= {self.param(value.hi)}"] if value.hi is not None else []
            cond = " AND ".join(bounds)
            return f"(NOT ({cond}))" if t.op == "!=" else f"({cond})"
        return f"{sql} {SQL_OP[t.op]} {self.param(value.value)}"

    def dynamic(self, leaf: Leaf, alias: Kind["m", "a"], key: str = "") -> str:
        """Compare a metadata value (alias m) or attribute `key` (alias a) by the type of the literal."""
        t = leaf.term
        value = t.value
        if isinstance(value, Range) or value.kind == "number":
            return self.numeric("m.value_num" if alias == "m" else self.attribute_number(key), leaf)
        text_sql = "m.value_str" if alias == "m" else self.attribute_text(key)
        if value.kind == "bool":
            if alias == "m":
                return f"m.value_bool {SQL_OP[t.op]} {self.param(value.value)}"
            return f"lower({text_sql}) {SQL_OP[t.op]} {self.param(str(value.value).lower())}"
        return f"{text_sql} {SQL_OP[t.op]} {self.param(value.raw)}"

    def set_term(self, leaf: Leaf) -> Frag:
        """tag / category / supercategory: the image has (or, with !=, lacks) a row with the value."""
        name, t = leaf.ref.name, leaf.term
        if name == "tag":
            cond = self.exists("tags", "t", f"t.tag = {self.param(t.value.raw)}")
        elif t.count is not None:
            count = self.category_count(CATEGORY_COLUMNS[name], t.value.raw)
            return Frag(f"({count} {SQL_OP[t.count.op]} {self.param(t.count.value.value)})", False)
        else:
            cond = self.category_exists(CATEGORY_COLUMNS[name], t.value.raw)
        return Frag(f"(NOT {cond})" if t.op == "!=" else cond, False)


def json_pointer(key: str) -> str:
    """A JSON pointer (RFC 6901) to a top-level key: DuckDB's json path that needs no quoting rules."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


def glob_to_like(pattern: str) -> str:
    """Translate a `*`/`?` glob into a LIKE pattern with `\\` as the escape character."""
    out = []
    for ch in pattern:
        if ch in "\\%_":
            out.append("\\" + ch)
        elif ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        else:
            out.append(ch)
    return "".join(out)


SORT_KEYS = {
    "file_name": "i.file_name",
    "width": "i.width",
    "height": "i.height",
    "boxes": "i.num_annotations",
    "image_id": "i.image_id",
}


def _order(
    order_by: str, descending: bool, sort_columns: Mapping[str, str] | None, params: dict[str, object]
) -> tuple[str, list[str]]:
    """The metadata join (if any) and the ORDER BY expressions, tie-broken by image id."""
    columns = sort_columns if sort_columns is not None else SORT_KEYS
    if order_by.lower().startswith(METADATA_PREFIX) and len(order_by) > len(METADATA_PREFIX):
        params["sort_key"] = order_by[len(METADATA_PREFIX) :]
        join = " LEFT JOIN metadata s ON s.version_id = i.version_id AND s.image_id = i.image_id AND s.key = $sort_key"
        return join, ["s.value_num", "s.value_str", "s.value_bool", "i.image_id"]
    if order_by in columns:
        return "", [columns[order_by], "i.image_id"]
    raise ValueError(f"cannot sort by {order_by!r}; expected one of {', '.join(SORT_KEYS)} or metadata.<key>")


def _paging(name: str, value: int | None, params: dict[str, object]) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{'limit' if name == 'lim' else 'offset'} must be a non-negative int, got {value!r}")
    params[name] = value
    return f" {'LIMIT' if name == 'lim' else 'OFFSET'} ${name}"


def check_page(order_by: str, limit: int | None, offset: int | None,
               sort_columns: Mapping[str, str] | None = None) -> None:
    """Raise ValueError for a sort key or paging that `images_sql`/`page_sql` would refuse."""
    _order(order_by, False, sort_columns, {})
    _paging("lim", limit, {})
    _paging("off", offset, {})


def images_sql(
    compiled: CompiledQuery,
    order_by: str = "file_name",
    descending: bool = False,
    limit: int | None = None,
    offset: int | None = None,
    *,
    version_id: int | None = None,
    sort_columns: Mapping[str, str] | None = None,
) -> tuple[str, dict[str, object]]:
    """A full `SELECT i.image_id` for the gallery: whitelisted sort key, stable tie-break, paging as params.

    `sort_columns` may map the SORT_KEYS names to other (fixed) SQL, e.g. a precomputed rank column."""
    params = dict(compiled.params)
    direction = "DESC" if descending else "ASC"
    join, keys = _order(order_by, descending, sort_columns, params)
    where = compiled.where
    if version_id is not None:
        params["version_id"] = version_id
        where = f"i.version_id = $version_id AND {where}"
    order = ", ".join(f"{key} {direction} NULLS LAST" for key in keys)
    sql = f"SELECT i.image_id FROM images i{join} WHERE {where} ORDER BY {order}"  # noqa: S608 - whitelisted SQL
    sql += _paging("lim", limit, params) + _paging("off", offset, params)
    return sql, params


def page_sql(
    compiled: CompiledQuery,
    order_by: str = "file_name",
    descending: bool = False,
    limit: int = 100,
    offset: int = 0,
    *,
    sort_columns: Mapping[str, str] | None = None,
) -> tuple[str, dict[str, object]]:
    """One row `(total, ids)`: the match count and one sorted page of image ids, filtering only once."""
    params = dict(compiled.params)
    direction = "DESC" if descending else "ASC"
    join, keys = _order(order_by, descending, sort_columns, params)
    picked = ", ".join(f"{key} AS k{n}" for n, key in enumerate(keys))
    order = ", ".join(f"k{n} {direction} NULLS LAST" for n in range(len(keys)))
    paging = _paging("lim", limit, params) + _paging("off", offset, params)
    sql = (
        f"WITH r AS MATERIALIZED (SELECT {picked} FROM images i{join} WHERE {compiled.where}) "  # noqa: S608
        f"SELECT (SELECT count(*) FROM r), "
        f"(SELECT coalesce(list(k{len(keys) - 1} ORDER BY {order}), []) FROM "
        f"(SELECT * FROM r ORDER BY {order}{paging}))"
    )
    return sql, params
