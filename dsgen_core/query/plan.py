"""Binding: a parsed query checked once against a version's vocabulary, into a plan both evaluators read.

The plan is the AST with every `Term` replaced by a `Leaf` that says what the field refers to, so the
SQL compiler and the array evaluator never resolve names or raise QueryErrors themselves; it also says
what the query reads (curation rows, annotation rows) and carries a position-free key for memos.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Hashable
from dataclasses import dataclass
from typing import Literal as Kind

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
RefKind = Kind["image", "annotation", "set", "metadata", "attr", "has_attr", "none_or_any", "has_metadata",
               "has_tags", "has_annotations", "special"]


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
ANNOTATION_KINDS = ("annotation", "attr", "has_attr")


def field_names() -> list[str]:
    """Every field name the language knows (not counting metadata keys), for help and suggestions."""
    return [*IMAGE_COLUMNS, *SET_FIELDS, *OTHER_FIELDS, *ANNOTATION_COLUMNS, "metadata.<key>", "attr.<key>"]


@dataclass(frozen=True)
class Ref:
    """What a term's field refers to: `name` is a column, set or `tags`/`categories`; `key` a metadata or
    attribute key as stored."""

    kind: RefKind
    name: str = ""
    key: str = ""


@dataclass(frozen=True)
class Leaf:
    """A term whose field is resolved and whose operator and value fit it, at the level it is evaluated."""

    term: Term
    ref: Ref
    level: Level

    @property
    def op(self) -> str:
        return self.term.op

    @property
    def value(self) -> Literal | Range:
        return self.term.value


@dataclass(frozen=True)
class Plan:
    """A bound query: `root` is the AST with `Leaf` in place of every `Term`."""

    root: Node
    reads_curation: bool
    reads_annotations: bool
    key: Hashable  # the same for queries that differ only in spacing, positions or field spelling

    @property
    def matches_all(self) -> bool:
        return isinstance(self.root, MatchAll)


def bind(query: str | Node, metadata_keys: Collection[str] = ()) -> Plan:
    """Parse (if needed) and bind; bare unknown fields are metadata keys only when in `metadata_keys`."""
    ast = parse(query) if isinstance(query, str) else query
    binder = _Binder(metadata_keys)
    root = binder.node(ast, "image")
    return Plan(root=root, reads_curation=binder.reads_curation, reads_annotations=binder.reads_annotations,
                key=canonical(root))


class _Binder:
    def __init__(self, metadata_keys: Collection[str]) -> None:
        self.metadata_keys: dict[str, str] = {}  # spelling as typed or lower-cased → stored key
        for key in metadata_keys:
            self.metadata_keys.setdefault(key.lower(), key)
        self.metadata_keys.update({k: k for k in metadata_keys})
        self.reads_curation = False
        self.reads_annotations = False

    def node(self, node: Node, level: Level) -> Node:
        if isinstance(node, MatchAll):
            return node
        if isinstance(node, And | Or):
            return type(node)(tuple(self.node(item, level) for item in node.items), node.pos)
        if isinstance(node, Not):
            return Not(self.node(node.item, level), node.pos)
        if isinstance(node, AnnGroup):
            if level == "annotation":
                raise QueryError("ann:( … ) cannot be nested", node.pos,
                                 "annotation fields inside the outer ann:( … )")
            self.reads_annotations = True
            return AnnGroup(self.node(node.body, "annotation"), node.pos, node.count)
        return self.term(node, level)  # type: ignore[arg-type]

    # -- terms ----------------------------------------------------------------------------------
    def term(self, t: Term, level: Level) -> Leaf:
        ref = self.resolve(t)
        if t.count is not None and not (ref.kind == "set" and ref.name != "tag" and level == "image"):
            raise QueryError(
                f"'{t.field}' cannot take a count comparison",
                t.count.pos,
                "a count only after category:<name>, supercategory:<name> or ann:( … ), e.g. category:person>=3",
            )
        if level == "annotation" or ref.kind in ANNOTATION_KINDS:
            self.annotation_term(ref, t)
        elif ref.kind == "image":
            check_compare(IMAGE_COLUMNS[ref.name].type, t)
        elif ref.kind == "metadata":
            check_dynamic(t)
        elif ref.kind == "set":
            self.set_term(ref, t)
        elif ref.kind == "none_or_any":
            require_equality(t, "none/any")
        elif ref.name == "has":
            ref = self.has(t)
        else:  # a bare `ann` term
            raise QueryError("ann needs a group of annotation conditions", t.value.pos,
                             "ann:( … ), e.g. ann:(category:car bbox.area<1024)")
        self.note_reads(ref)
        return Leaf(t, ref, level)

    def note_reads(self, ref: Ref) -> None:
        if ref.kind in ("metadata", "has_metadata", "has_tags") or (ref.kind in ("set", "none_or_any")
                                                                    and ref.name in ("tag", "tags")):
            self.reads_curation = True
        if ref.kind in (*ANNOTATION_KINDS, "has_annotations") or (ref.kind in ("set", "none_or_any")
                                                                  and ref.name not in ("tag", "tags")):
            self.reads_annotations = True

    def annotation_term(self, ref: Ref, t: Term) -> None:
        """The checks of a condition on a single annotation (inside ann:( … ) or on its own)."""
        if ref.kind == "annotation":
            check_compare(ANNOTATION_COLUMNS[ref.name].type, t)
        elif ref.kind == "attr":
            check_dynamic(t)
        elif ref.kind == "has_attr":
            if t.op != ":":
                raise QueryError("has takes ':'", t.op_pos, "has:attr.<key>, e.g. has:attr.occluded")
        elif ref.kind == "set" and ref.name in CATEGORY_COLUMNS:
            require_equality(t, "text")
        else:
            allowed = ", ".join([*ANNOTATION_COLUMNS, "category", "supercategory", "attr.<key>", "has:attr.<key>"])
            raise QueryError(
                f"'{t.field}' is not an annotation field; ann:( … ) takes annotation fields only",
                t.pos,
                f"one of: {allowed}",
            )

    def set_term(self, ref: Ref, t: Term) -> None:
        require_equality(t, "text")
        if ref.name != "tag" and t.count is not None and t.op == "!=":
            raise QueryError("a count comparison needs ':' before the name", t.op_pos,
                             f"{t.field}:<name>{t.count.op}<n>")

    def has(self, t: Term) -> Ref:
        """`has:metadata.<key>`, `has:<known key>`, `has:tags`, `has:annotations` (attr: a Ref of its own)."""
        if t.op != ":":
            raise QueryError("has takes ':'", t.op_pos, "has:<name>, e.g. has:metadata.weather")
        target = t.value.raw
        lower = target.lower()
        if lower.startswith(METADATA_PREFIX) and len(target) > len(METADATA_PREFIX):
            return Ref("has_metadata", "has", target[len(METADATA_PREFIX):])
        if lower in ("tag", "tags"):
            return Ref("has_tags", "has")
        if lower in ("annotation", "annotations", "category", "categories"):
            return Ref("has_annotations", "has")
        key = self.metadata_keys.get(target) or self.metadata_keys.get(lower)
        if key is not None:
            return Ref("has_metadata", "has", key)
        keys = set(self.metadata_keys.values())
        close = difflib.get_close_matches(target, [*keys, *(METADATA_PREFIX + k for k in keys)], n=1)
        raise QueryError(
            f"has: does not know '{target}'",
            t.value.pos,
            "metadata.<key>, attr.<key>, tags or annotations",
            f"did you mean '{close[0]}'?" if close else "",
        )

    # -- field resolution -----------------------------------------------------------------------
    def resolve(self, t: Term) -> Ref:
        name = t.field.lower()
        name = ALIASES.get(name, name)
        for prefix, kind in ((METADATA_PREFIX, "metadata"), (ATTR_PREFIX, "attr")):
            if name.startswith(prefix) and len(name) > len(prefix):
                return Ref(kind, prefix[:-1], t.field[len(prefix):])  # type: ignore[arg-type]
        if name in IMAGE_COLUMNS:
            return Ref("image", name)
        if name in ANNOTATION_COLUMNS:
            return Ref("annotation", name)
        if name in SET_FIELDS:
            return Ref("set", name)
        if name in ("tags", "categories"):
            if _is_none_or_any(t):
                return Ref("none_or_any", name)
            return Ref("set", "tag" if name == "tags" else "category")
        if name == "has" and t.value.raw.lower().startswith(ATTR_PREFIX) and len(t.value.raw) > len(ATTR_PREFIX):
            return Ref("has_attr", name, t.value.raw[len(ATTR_PREFIX):])
        if name in OTHER_FIELDS:  # `has` (resolved by its value) and a bare `ann`
            return Ref("special", name)
        key = self.metadata_keys.get(t.field) or self.metadata_keys.get(name)
        if key is not None:
            return Ref("metadata", "metadata", key)
        keys = set(self.metadata_keys.values())
        candidates = [n for n in field_names() if "<" not in n] + [*ALIASES, *keys,
                                                                    *(METADATA_PREFIX + k for k in keys)]
        close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else ""
        raise QueryError(f"unknown field '{t.field}'", t.pos, "one of: " + ", ".join(field_names()), hint)


# -- value checks (shared by image, annotation and metadata terms) -------------------------------------
def check_compare(type_: ColumnType, t: Term) -> None:
    """Whether `<column> <op> <value>` makes sense for a whitelisted column of that type."""
    if type_ == "number":
        check_numeric(t)
        return
    require_equality(t, "true/false" if type_ == "bool" else "text")
    if type_ == "bool" and not (isinstance(t.value, Literal) and t.value.kind == "bool"):
        raise mismatch(t, "true or false")


def check_numeric(t: Term) -> None:
    value = t.value
    if isinstance(value, Range):
        if t.op not in EQUALITY:
            raise QueryError(f"a range cannot follow '{t.op}'", t.op_pos, f"{t.field}:lo..hi or {t.field}!=lo..hi")
        return
    if value.kind != "number":
        raise mismatch(t, f"a number, e.g. {t.field}>10 or {t.field}:10..20")


def check_dynamic(t: Term) -> None:
    """A metadata value or attribute compares by the type of the literal: numbers, booleans or text."""
    value = t.value
    if isinstance(value, Range) or value.kind == "number":
        check_numeric(t)
    elif value.kind == "bool":
        require_equality(t, "true/false")


def require_equality(t: Term, what: str) -> None:
    if t.op not in EQUALITY:
        raise QueryError(
            f"type mismatch: '{t.field}' compares {what}; '{t.op}' needs a numeric field",
            t.op_pos,
            "one of ':', '=', '!='",
        )


def mismatch(t: Term, expected: str) -> QueryError:
    return QueryError(f"type mismatch: '{t.field}' does not take {t.value.raw!r}", t.value.pos, expected)


def _is_none_or_any(t: Term) -> bool:
    value = t.value
    return isinstance(value, Literal) and not value.quoted and value.raw.lower() in ("none", "any")


# -- the memo key --------------------------------------------------------------------------------------
def canonical(node: Node) -> Hashable:
    """The bound tree without positions or field spellings: what the answer depends on."""
    if isinstance(node, MatchAll):
        return ("all",)
    if isinstance(node, And | Or):
        return (type(node).__name__, *(canonical(item) for item in node.items))
    if isinstance(node, Not):
        return ("not", canonical(node.item))
    if isinstance(node, AnnGroup):
        return ("ann", canonical(node.body), _count_key(node.count))
    leaf: Leaf = node  # type: ignore[assignment]
    return ("leaf", leaf.level, leaf.ref, leaf.op, _value_key(leaf.value), _count_key(leaf.term.count))


def _value_key(value: Literal | Range) -> Hashable:
    if isinstance(value, Range):
        return ("range", value.lo, value.hi)
    return (value.kind, value.value if value.kind != "string" else value.raw, value.raw, value.quoted)


def _count_key(count: object) -> Hashable:
    return None if count is None else (count.op, count.value.value)  # type: ignore[attr-defined]
