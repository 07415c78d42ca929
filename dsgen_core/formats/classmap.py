"""Class numbering for index-based targets (YOLO, ImageFolder): chosen by the user, written out, never shifted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from dsgen_core.formats.base import ClassOrder, ConversionReport, Split, WriteOptions

__all__ = ["ClassMap", "class_map"]


@dataclass
class ClassMap:
    names: list[str]  # target id → name
    by_category: dict[int, int]  # category_id → target id (categories left out are absent)

    def name_of(self, category_id: int) -> str | None:
        i = self.by_category.get(category_id)
        return None if i is None else self.names[i]


def _categories(splits: Sequence[Split]) -> dict[int, str]:
    cats: dict[int, str] = {}
    for s in splits:
        t = s.tables.categories
        for cid, name in zip(t.column("category_id").to_pylist(), t.column("name").to_pylist(), strict=True):
            cats.setdefault(int(cid), name)
    return cats


def class_map(splits: Sequence[Split], options: WriteOptions, report: ConversionReport) -> ClassMap:
    """The mapping, recorded in `report.class_map`; clashes become problems, dropped classes losses."""
    cats = _categories(splits)
    if options.class_order is ClassOrder.GIVEN:
        if not options.class_names:
            report.problems.append("class order 'given' needs the list of class names")
            return ClassMap([], {})
        names = list(options.class_names)
        if len(set(names)) != len(names):
            report.problems.append("the given class list names a class twice")
        position = {n: i for i, n in enumerate(names)}
        by_category = {cid: position[n] for cid, n in cats.items() if n in position}
        dropped = sorted(f"{n} (category {cid})" for cid, n in cats.items() if n not in position)
        if dropped:
            report.notes.append(f"classes not in the given list: {', '.join(dropped[:10])}")
    else:
        order = sorted(cats) if options.class_order is ClassOrder.CATEGORY_ID else sorted(cats, key=lambda c: cats[c])
        names = [cats[c] for c in order]
        by_category = {cid: i for i, cid in enumerate(order)}
    seen: dict[str, int] = {}
    for cid, name in sorted(cats.items()):
        if name in seen and cid in by_category and seen[name] in by_category:
            report.problems.append(f"categories {seen[name]} and {cid} are both named {name!r}")
        seen.setdefault(name, cid)
    _report_dropped(splits, by_category, report)
    report.class_map = [(cid, by_category[cid], names[by_category[cid]]) for cid in sorted(by_category)]
    return ClassMap(names, by_category)


def _report_dropped(splits: Sequence[Split], by_category: dict[int, int], report: ConversionReport) -> None:
    kept = pa.array(sorted(by_category), pa.int64())
    count, examples = 0, []
    for s in splits:
        ann = s.tables.annotations
        cat = ann.column("category_id")
        lost = pc.and_(pc.is_valid(cat), pc.invert(pc.is_in(cat, value_set=kept)))
        n = int(pc.sum(lost).as_py() or 0)
        if n:
            count += n
            rows = ann.filter(lost).slice(0, 5)
            examples += [f"annotation {a} (category {c})" for a, c in zip(
                rows.column("annotation_id").to_pylist(), rows.column("category_id").to_pylist(), strict=True)]
    report.lose("classes", "objects of classes the target's class list does not have", count, examples)
