"""Evaluate a bound query plan to a boolean mask over the engine's image positions.

Image columns, per-class counts, tags and metadata are numpy arrays, so most queries never reach
SQL; annotation conditions run in DuckDB over the annotation rows, which carry their image's
position, so no join back to the images is needed; the rest (file globs, sha prefixes, text
order comparisons) is compiled by the same compiler as the SQL path and answered as positions.

Truth is two-valued here: the compiler coalesces NULL to FALSE under NOT and only AND/OR sit above
the leaves otherwise, so "is TRUE" of the whole equals the boolean combination of "is TRUE" of each
leaf, as long as each leaf treats a missing value as not matching (NaN, NO_CODE, -1 below).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from dsgen_core.query.ast import And, AnnGroup, Literal, MatchAll, Node, Not, Or, Range, Term
from dsgen_core.query.compiler import Compiler
from dsgen_core.query.plan import ANNOTATION_KINDS, CATEGORY_COLUMNS, Leaf, Plan
from dsgen_core.search.curation_index import NO_CODE

if TYPE_CHECKING:
    from dsgen_core.search.engine import VersionEngine

# DSL image fields answered from numpy columns (name in IMAGE_COLUMNS -> engine column)
NUMBER_COLUMNS = {"width": "width", "height": "height", "boxes": "num_annotations", "id": "image_id",
                  "size": "size_bytes"}
COMPARE: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    ":": np.equal, "=": np.equal, "!=": np.not_equal, ">": np.greater, ">=": np.greater_equal,
    "<": np.less, "<=": np.less_equal,
}


def plan_mask(engine: VersionEngine, plan: Plan) -> np.ndarray:
    """The images matching a plan bound against this engine's vocabulary, as a mask over positions."""
    return MaskEvaluator(engine).mask(plan.root)


class MaskEvaluator:
    """One evaluation: the engine's arrays, and a compiler for the parts answered in SQL."""

    def __init__(self, engine: VersionEngine) -> None:
        self.engine = engine
        self.n = len(engine.image_ids)
        self.sql = Compiler(engine.layout)
        self.curation = engine.curation

    def mask(self, node: Node) -> np.ndarray:
        if isinstance(node, MatchAll):
            return np.ones(self.n, bool)
        if isinstance(node, And | Or):
            parts = [self.mask(item) for item in node.items]
            out = parts[0].copy()
            for part in parts[1:]:
                if isinstance(node, And):
                    out &= part
                else:
                    out |= part
            return out
        if isinstance(node, Not):
            return ~self.mask(node.item)
        if isinstance(node, AnnGroup):
            return self.ann_group(node)
        return self.leaf(node)  # type: ignore[arg-type]

    # -- leaves ---------------------------------------------------------------------------------
    def leaf(self, leaf: Leaf) -> np.ndarray:
        r, t = leaf.ref, leaf.term
        if r.kind in ANNOTATION_KINDS:
            return self.positions(self.engine.annotation_positions(self.sql.annotation_leaf(leaf).sql,
                                                                   self.sql.params))
        if r.kind == "image" and r.name in NUMBER_COLUMNS:
            return numeric(self.engine.lake_column(NUMBER_COLUMNS[r.name]), t)
        if r.kind == "image" and r.name == "split":
            split = self.engine.split
            same = split is not None and split == t.value.raw
            hit = same if t.op != "!=" else (split is not None and not same)
            return np.full(self.n, hit, bool)
        if r.kind == "metadata":
            found = self.metadata(r.key, t)
            if found is not None:
                return found
        if r.kind == "set" and r.name == "tag":
            held = self.curation.tag_mask(t.value.raw)
            return ~held if t.op == "!=" else held
        if r.kind == "set" and self.engine.layout.count_columns:
            return self.category(leaf)
        if r.kind == "none_or_any":
            held = self.curation.tagged if r.name == "tags" else self.engine.annotated
            negate = (t.value.raw.lower() == "none") != (t.op == "!=")
            return ~held if negate else held.copy()
        if r.kind == "has_tags":
            return self.curation.tagged.copy()
        if r.kind == "has_annotations":
            return self.engine.annotated.copy()
        if r.kind == "has_metadata":
            column = self.curation.meta.get(r.key)
            return column.present.copy() if column else self.none()
        return self.fallback(leaf)

    def category(self, leaf: Leaf) -> np.ndarray:
        t = leaf.term
        layout = self.engine.layout
        ids = (layout.by_name if CATEGORY_COLUMNS[leaf.ref.name] == "name" else layout.by_super).get(t.value.raw, [])
        total = np.zeros(self.n, np.float64)
        for cid in ids:
            total += self.engine.lake_column(f"c_{int(cid)}")
        if t.count is not None:
            return COMPARE[t.count.op](total, t.count.value.value)
        return total == 0 if t.op == "!=" else total > 0

    def metadata(self, key: str, t: Term) -> np.ndarray | None:
        column = self.curation.meta.get(key)
        value = t.value
        if isinstance(value, Range) or value.kind == "number":
            return numeric(column.numbers, t) if column else self.none()
        if value.kind == "bool":
            if column is None:
                return self.none()
            flag = 1 if value.value else 0
            return column.flags == flag if t.op != "!=" else (column.flags != flag) & (column.flags != -1)
        if t.op not in (":", "=", "!="):
            return None  # text order comparisons: the SQL path
        if column is None:
            return self.none()
        code = column.code_of.get(value.raw, -2)
        if t.op == "!=":
            return (column.codes != code) & (column.codes != NO_CODE)
        return column.codes == code

    def ann_group(self, node: AnnGroup) -> np.ndarray:
        body = self.sql.ann_body(node)
        if node.count is None:
            return self.positions(self.engine.annotation_positions(body, self.sql.params))
        counts = np.zeros(self.n, np.float64)
        pos, n = self.engine.annotation_counts(body, self.sql.params)
        counts[pos] = n
        return COMPARE[node.count.op](counts, node.count.value.value)

    def fallback(self, node: Node) -> np.ndarray:
        """Anything without an array form: the compiler's own SQL over the images, as positions."""
        return self.positions(self.engine.image_positions(self.sql.node(node, "image").sql, self.sql.params))

    def positions(self, pos: np.ndarray) -> np.ndarray:
        mask = np.zeros(self.n, bool)
        mask[pos] = True
        return mask

    def none(self) -> np.ndarray:
        return np.zeros(self.n, bool)


def numeric(values: np.ndarray, t: Term) -> np.ndarray:
    """`values <op> literal` or a range, where NaN (no value) never matches, negated or not."""
    value = t.value
    known = ~np.isnan(values)
    if isinstance(value, Range):
        inside = known.copy()
        if value.lo is not None:
            inside &= values >= value.lo
        if value.hi is not None:
            inside &= values <= value.hi
        return (known & ~inside) if t.op == "!=" else inside
    assert isinstance(value, Literal)
    with np.errstate(invalid="ignore"):
        return COMPARE[t.op](values, value.value) & known
