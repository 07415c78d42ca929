"""Compile a query AST into one boolean DuckDB SQL expression over the image alias `i`.

Field names map to a fixed whitelist of column SQL and every value becomes a named
parameter ($p0, $p1, …): no text typed by the user ever reaches the SQL string.

The SQL runs against these relations (the caller registers them, e.g. as DuckDB views);
rows join their image on (version_id, image_id):

* ``images``      — IMAGES_SCHEMA columns + ``version_id BIGINT`` + ``split VARCHAR``
* ``annotations`` — ANNOTATIONS_SCHEMA columns + ``version_id BIGINT`` (``attributes``: JSON text)
* ``categories``  — CATEGORIES_SCHEMA columns + ``version_id BIGINT``
* ``tags``        — ``(version_id BIGINT, image_id BIGINT, tag VARCHAR)``
* ``metadata``    — ``(version_id BIGINT, image_id BIGINT, key VARCHAR, value_type VARCHAR,
  value_str VARCHAR, value_num DOUBLE, value_bool BOOLEAN)``

To read precomputed per-image class counts instead of counting annotations, subclass
:class:`Compiler`, override :meth:`Compiler.category_exists` / :meth:`Compiler.category_count`
and pass the subclass to :func:`compile_query`.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal as Kind
from typing import NamedTuple

from dsgen_core.query.ast import (
    EQUALITY,
    And,
    AnnGroup,
    Literal,
    MatchAll,
    Node,
    Not,
    Or,
    QueryError,
    Range,
    Term,
)
from dsgen_core.query.parser import parse

Level = Kind["image", "annotation"]
ColumnType = Kind["number", "bool", "text", "glob", "prefix", "upper"]
SQL_OP = {":": "=", "=": "=", "!=": "<>", ">": ">", ">=": ">=", "<": "<", "<=": "<="}


@dataclass(frozen=True)
class Column:
    """A whitelisted column (or fixed expression) and how its values compare."""

    type: ColumnType
    sql: str
    nullable: bool = True


IMAGE_COLUMNS: dict[str, Column] = {
    "width": Column("number", "i.width"),
    "height": Column("number", "i.height"),
    "boxes": Column("number", "i.num_annotations", nullable=False),
    "id": Column("number", "i.image_id", nullable=False),
    "size": Column("number", "i.size_bytes"),
    "file": Column("glob", "i.file_name", nullable=False),
    "split": Column("text", "i.split"),
    "sha": Column("prefix", "i.sha256"),
}
ANNOTATION_COLUMNS: dict[str, Column] = {
    "bbox.area": Column("number", "(a.bbox_w * a.bbox_h)"),
    "bbox.w": Column("number", "a.bbox_w"),
    "bbox.h": Column("number", "a.bbox_h"),
    "bbox.x": Column("number", "a.bbox_x"),
    "bbox.y": Column("number", "a.bbox_y"),
    "bbox.aspect": Column("number", "(a.bbox_w / NULLIF(a.bbox_h, 0))"),
    "area": Column("number", "a.area"),
    "score": Column("number", "a.score"),
    "iscrowd": Column("bool", "a.iscrowd"),
    "is_machine": Column("bool", "a.is_machine", nullable=False),
    "type": Column("upper", "a.annotation_type", nullable=False),
    "source": Column("text", "a.source"),
}
# Multi-valued fields: the image matches when at least one of its rows has the value.
SET_FIELDS = ("tag", "category", "supercategory")
CATEGORY_COLUMNS = {"category": "name", "supercategory": "supercategory"}
OTHER_FIELDS = ("tags", "categories", "has", "ann")
ALIASES = {
    "image_id": "id",
    "file_name": "file",
    "filename": "file",
    "sha256": "sha",
    "num_annotations": "boxes",
    "size_bytes": "size",
    "annotation_type": "type",
    "bbox.width": "bbox.w",
    "bbox.height": "bbox.h",
}
METADATA_PREFIX, ATTR_PREFIX = "metadata.", "attr."


def field_names() -> list[str]:
    """Every field name the language knows (not counting metadata keys), for help and suggestions."""
    return [*IMAGE_COLUMNS, *SET_FIELDS, *OTHER_FIELDS, *ANNOTATION_COLUMNS, "metadata.<key>", "attr.<key>"]


@dataclass
class CompiledQuery:
    where: str  # boolean SQL over alias i
    params: dict[str, object]  # named parameters: con.execute(sql, params)
    ast: Node


class Frag(NamedTuple):
    """A compiled SQL fragment; `nullable` says whether it can evaluate to NULL."""

    sql: str
    nullable: bool


@dataclass(frozen=True)
class Resolved:
    """What a field name refers to; `key` is the metadata/attribute key for prefixed fields."""

    kind: Kind["image", "annotation", "set", "metadata", "attr", "has_attr", "special"]
    name: str
    key: str = ""


def compile_query(
    text_or_ast: str | Node, metadata_keys: Collection[str] = (), *, compiler: type[Compiler] | None = None
) -> CompiledQuery:
    """Parse (if needed) and compile; bare unknown fields are metadata keys only when in `metadata_keys`."""
    ast = parse(text_or_ast) if isinstance(text_or_ast, str) else text_or_ast
    comp = (compiler or Compiler)(metadata_keys)
    where = comp.node(ast, "image").sql
    return CompiledQuery(f"({where})", comp.params, ast)


class Compiler:
    """One compilation: walks the AST, collects parameters, emits SQL fragments."""

    def __init__(self, metadata_keys: Collection[str] = ()) -> None:
        self.metadata_keys: dict[str, str] = {}  # spelling as typed or lower-cased → stored key
        for key in metadata_keys:
            self.metadata_keys.setdefault(key.lower(), key)
        self.metadata_keys.update({k: k for k in metadata_keys})
        self.params: dict[str, object] = {}

    def param(self, value: object) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return "$" + name

    # -- relations: override these to use other tables (e.g. precomputed counts) --------------
    def image_rows(self, table: str, alias: str) -> str:
        """`FROM`-clause body selecting the rows of `table` that belong to image `i`."""
        return f"{table} {alias} WHERE {alias}.version_id = i.version_id AND {alias}.image_id = i.image_id"

    def exists(self, table: str, alias: str, cond: str = "") -> str:
        return f"EXISTS (SELECT 1 FROM {self.image_rows(table, alias)}{f' AND ({cond})' if cond else ''})"  # noqa: S608 - whitelisted SQL

    def category_rows(self, column: str, name: str) -> str:
        join = (
            "annotations a JOIN categories c ON c.version_id = a.version_id AND c.category_id = a.category_id"
        )
        return f"{join} WHERE a.version_id = i.version_id AND a.image_id = i.image_id AND c.{column} = {name}"

    def category_exists(self, column: str, name: str) -> str:
        """Image `i` has an annotation whose category `column` equals placeholder `name`."""
        return f"EXISTS (SELECT 1 FROM {self.category_rows(column, name)})"  # noqa: S608 - whitelisted SQL

    def category_count(self, column: str, name: str) -> str:
        """Integer SQL: how many annotations of image `i` have that category."""
        return f"(SELECT count(*) FROM {self.category_rows(column, name)})"  # noqa: S608 - whitelisted SQL

    def annotation_category(self, column: str, name: str) -> str:
        """Annotation `a` (inside ann:( … )) has that category."""
        sub = "SELECT c.category_id FROM categories c WHERE c.version_id = a.version_id"
        return f"a.category_id IN ({sub} AND c.{column} = {name})"

    def attribute_text(self, key: str) -> str:
        """Text SQL of attribute `key` of annotation `a` (NULL when absent or JSON null)."""
        return f"json_extract_string(a.attributes, {self.param(json_pointer(key))})"

    def attribute_number(self, key: str) -> str:
        """Numeric SQL of attribute `key` of annotation `a` (NULL when absent or not a number)."""
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
            return self.ann_group(node, level)
        return self.term(node, level)

    def ann_group(self, node: AnnGroup, level: Level) -> Frag:
        if level == "annotation":
            raise QueryError(
                "ann:( … ) cannot be nested", node.pos, "annotation fields inside the outer ann:( … )"
            )
        body = self.node(node.body, "annotation").sql
        rows = f"{self.image_rows('annotations', 'a')} AND ({body})"
        if node.count is None:
            return Frag(f"EXISTS (SELECT 1 FROM {rows})", False)  # noqa: S608 - whitelisted SQL
        count = f"(SELECT count(*) FROM {rows})"  # noqa: S608 - whitelisted SQL
        return Frag(f"({count} {SQL_OP[node.count.op]} {self.param(node.count.value.value)})", False)

    def term(self, t: Term, level: Level) -> Frag:
        r = self.resolve(t)
        if t.count is not None and not (r.kind == "set" and r.name != "tag" and level == "image"):
            raise QueryError(
                f"'{t.field}' cannot take a count comparison",
                t.count.pos,
                "a count only after category:<name>, supercategory:<name> or ann:( … ), e.g. category:person>=3",
            )
        if level == "annotation":
            return self.annotation_term(r, t)
        if r.kind in ("annotation", "attr", "has_attr"):
            return Frag(self.exists("annotations", "a", self.annotation_term(r, t).sql), False)
        if r.kind == "image":
            column = IMAGE_COLUMNS[r.name]
            return Frag(self.compare(column.sql, column.type, t), column.nullable)
        if r.kind == "metadata":
            return Frag(
                self.exists("metadata", "m", f"m.key = {self.param(r.key)} AND {self.dynamic(t, 'm')}"), False
            )
        if r.kind == "set":
            return self.set_term(r.name, t)
        if r.name in ("tags", "categories"):
            return self.none_or_any(r.name, t)
        if r.name == "has":
            return self.has(t)
        raise QueryError(
            "ann needs a group of annotation conditions",
            t.value.pos,
            "ann:( … ), e.g. ann:(category:car bbox.area<1024)",
        )

    def annotation_term(self, r: Resolved, t: Term) -> Frag:
        """A condition on the single annotation `a` (inside ann:( … ) or an EXISTS)."""
        if r.kind == "annotation":
            column = ANNOTATION_COLUMNS[r.name]
            return Frag(self.compare(column.sql, column.type, t), column.nullable)
        if r.kind == "attr":
            return Frag(self.dynamic(t, "a", r.key), True)
        if r.kind == "has_attr":
            if t.op != ":":
                raise QueryError("has takes ':'", t.op_pos, "has:attr.<key>, e.g. has:attr.occluded")
            return Frag(f"({self.attribute_text(r.key)} IS NOT NULL)", True)
        if r.name in CATEGORY_COLUMNS:
            self.require_equality(t, "text")
            match = self.annotation_category(CATEGORY_COLUMNS[r.name], self.param(t.value.raw))
            if t.op == "!=":  # an annotation without a category is "not person" too
                return Frag(f"(NOT coalesce({match}, FALSE))", False)
            return Frag(match, True)
        allowed = ", ".join(
            [*ANNOTATION_COLUMNS, "category", "supercategory", "attr.<key>", "has:attr.<key>"]
        )
        raise QueryError(
            f"'{t.field}' is not an annotation field; ann:( … ) takes annotation fields only",
            t.pos,
            f"one of: {allowed}",
        )

    # -- field resolution ---------------------------------------------------------------------
    def resolve(self, t: Term) -> Resolved:
        name = t.field.lower()
        name = ALIASES.get(name, name)
        for prefix, kind in ((METADATA_PREFIX, "metadata"), (ATTR_PREFIX, "attr")):
            if name.startswith(prefix) and len(name) > len(prefix):
                return Resolved(kind, prefix[:-1], t.field[len(prefix) :])
        if name in IMAGE_COLUMNS:
            return Resolved("image", name)
        if name in ANNOTATION_COLUMNS:
            return Resolved("annotation", name)
        if name in SET_FIELDS:
            return Resolved("set", name)
        if name in ("tags", "categories") and not _is_none_or_any(t):
            return Resolved("set", name[:-1] if name == "tags" else "category")
        if (
            name == "has"
            and t.value.raw.lower().startswith(ATTR_PREFIX)
            and len(t.value.raw) > len(ATTR_PREFIX)
        ):
            return Resolved("has_attr", name, t.value.raw[len(ATTR_PREFIX) :])
        if name in OTHER_FIELDS:
            return Resolved("special", name)
        key = self.metadata_keys.get(t.field) or self.metadata_keys.get(name)
        if key is not None:
            return Resolved("metadata", "metadata", key)
        keys = set(self.metadata_keys.values())
        candidates = [n for n in field_names() if "<" not in n] + [
            *ALIASES,
            *keys,
            *(METADATA_PREFIX + k for k in keys),
        ]
        close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else ""
        raise QueryError(f"unknown field '{t.field}'", t.pos, "one of: " + ", ".join(field_names()), hint)

    # -- comparisons --------------------------------------------------------------------------
    def compare(self, sql: str, type_: ColumnType, t: Term) -> str:
        """`sql <op> value` for a whitelisted column of a known type."""
        if type_ == "number":
            return self.numeric(sql, t)
        self.require_equality(t, "true/false" if type_ == "bool" else "text")
        negate = t.op == "!="
        if type_ == "bool":
            value = t.value
            if not (isinstance(value, Literal) and value.kind == "bool"):
                raise _mismatch(t, "true or false")
            return f"{sql} {SQL_OP[t.op]} {self.param(value.value)}"
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

    def numeric(self, sql: str, t: Term) -> str:
        value = t.value
        if isinstance(value, Range):
            if t.op not in EQUALITY:
                raise QueryError(
                    f"a range cannot follow '{t.op}'", t.op_pos, f"{t.field}:lo..hi or {t.field}!=lo..hi"
                )
            bounds = [f"{sql} >= {self.param(value.lo)}"] if value.lo is not None else []
            bounds += [f"{sql} <= {self.param(value.hi)}"] if value.hi is not None else []
            cond = " AND ".join(bounds)
            return f"(NOT ({cond}))" if t.op == "!=" else f"({cond})"
        if value.kind != "number":
            raise _mismatch(t, f"a number, e.g. {t.field}>10 or {t.field}:10..20")
        return f"{sql} {SQL_OP[t.op]} {self.param(value.value)}"

    def dynamic(self, t: Term, alias: Kind["m", "a"], key: str = "") -> str:
        """Compare a metadata value (alias m) or attribute `key` (alias a) by the type of the literal."""
        value = t.value
        if isinstance(value, Range) or value.kind == "number":
            return self.numeric("m.value_num" if alias == "m" else self.attribute_number(key), t)
        text_sql = "m.value_str" if alias == "m" else self.attribute_text(key)
        if value.kind == "bool":
            self.require_equality(t, "true/false")
            if alias == "m":
                return f"m.value_bool {SQL_OP[t.op]} {self.param(value.value)}"
            return f"lower({text_sql}) {SQL_OP[t.op]} {self.param(str(value.value).lower())}"
        return f"{text_sql} {SQL_OP[t.op]} {self.param(value.raw)}"

    def set_term(self, name: str, t: Term) -> Frag:
        """tag / category / supercategory: the image has (or, with !=, lacks) a row with the value."""
        self.require_equality(t, "text")
        value = self.param(t.value.raw)
        if name == "tag":
            cond = self.exists("tags", "t", f"t.tag = {value}")
        elif t.count is not None:
            if t.op == "!=":
                raise QueryError(
                    "a count comparison needs ':' before the name",
                    t.op_pos,
                    f"{t.field}:<name>{t.count.op}<n>",
                )
            count = self.category_count(CATEGORY_COLUMNS[name], value)
            return Frag(f"({count} {SQL_OP[t.count.op]} {self.param(t.count.value.value)})", False)
        else:
            cond = self.category_exists(CATEGORY_COLUMNS[name], value)
        return Frag(f"(NOT {cond})" if t.op == "!=" else cond, False)

    def none_or_any(self, name: str, t: Term) -> Frag:
        """`tags:none|any` and `categories:none|any` (other values were resolved to the singular field)."""
        self.require_equality(t, "none/any")
        word = t.value.raw.lower()
        table, alias = ("tags", "t") if name == "tags" else ("annotations", "a")
        negate = (word == "none") != (t.op == "!=")
        cond = self.exists(table, alias)
        return Frag(f"(NOT {cond})" if negate else cond, False)

    def has(self, t: Term) -> Frag:
        """`has:metadata.<key>`, `has:<known key>`, `has:tags`, `has:annotations` (attr: see annotation_term)."""
        if t.op != ":":
            raise QueryError("has takes ':'", t.op_pos, "has:<name>, e.g. has:metadata.weather")
        target = t.value.raw
        lower = target.lower()
        if lower.startswith(METADATA_PREFIX) and len(target) > len(METADATA_PREFIX):
            key = target[len(METADATA_PREFIX) :]
        elif lower in ("tag", "tags"):
            return Frag(self.exists("tags", "t"), False)
        elif lower in ("annotation", "annotations", "category", "categories"):
            return Frag(self.exists("annotations", "a"), False)
        elif target in self.metadata_keys or lower in self.metadata_keys:
            key = self.metadata_keys.get(target) or self.metadata_keys[lower]
        else:
            keys = set(self.metadata_keys.values())
            close = difflib.get_close_matches(target, [*keys, *(METADATA_PREFIX + k for k in keys)], n=1)
            raise QueryError(
                f"has: does not know '{target}'",
                t.value.pos,
                "metadata.<key>, attr.<key>, tags or annotations",
                f"did you mean '{close[0]}'?" if close else "",
            )
        return Frag(self.exists("metadata", "m", f"m.key = {self.param(key)}"), False)

    def require_equality(self, t: Term, what: str) -> None:
        if t.op not in EQUALITY:
            raise QueryError(
                f"type mismatch: '{t.field}' compares {what}; '{t.op}' needs a numeric field",
                t.op_pos,
                "one of ':', '=', '!='",
            )


def _is_none_or_any(t: Term) -> bool:
    value = t.value
    return isinstance(value, Literal) and not value.quoted and value.raw.lower() in ("none", "any")


def json_pointer(key: str) -> str:
    """A JSON pointer (RFC 6901) to a top-level key: DuckDB's json path that needs no quoting rules."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


def _mismatch(t: Term, expected: str) -> QueryError:
    return QueryError(f"type mismatch: '{t.field}' does not take {t.value.raw!r}", t.value.pos, expected)


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
