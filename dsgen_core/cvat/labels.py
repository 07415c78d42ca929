"""Label sets: derive them from a COCO document and compare them with what a CVAT project already has."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dsgen_core.cvat.models import AttributeSpec, LabelSpec

__all__ = ["BUILTIN_ATTRIBUTES", "coco_problems", "is_structured", "labels_from_coco", "label_problems", "read_coco"]

# Shape properties CVAT exports as COCO attributes without any declaration.
BUILTIN_ATTRIBUTES = frozenset({"occluded", "rotation"})
_SHAPE_OF_TYPE = {"rectangle": "box", "polygon": "polygon", "mask": "mask"}


def read_coco(source: Path | bytes) -> dict[str, Any]:
    """A COCO document from a .json file, a CVAT export .zip, or their bytes."""
    raw = Path(source).read_bytes() if isinstance(source, (str, Path)) else source
    if raw[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            names = [n for n in zf.namelist() if n.startswith("annotations/") and n.endswith(".json")]
            if not names:
                raise ValueError("the zip has no annotations/*.json")
            raw = zf.read(sorted(names)[0])
    return json.loads(raw)


def _shape(ann: dict[str, Any]) -> str:
    seg = ann.get("segmentation")
    if isinstance(seg, dict):
        return "mask"
    return "polygon" if seg else "box"


def is_structured(value: Any) -> bool:
    """An attribute value CVAT cannot hold as such (an object or a list): it travels as JSON text."""
    return isinstance(value, (dict, list))


def labels_from_coco(doc: dict[str, Any], max_select_values: int = 64) -> list[LabelSpec]:
    """One label per category with every attribute the annotations use declared (CVAT drops undeclared ones).

    bool → checkbox, number → number, string → select of the seen values (text when there are many); an
    attribute with any object or list value → text (the values go as JSON text, see `json_text_attributes`).
    """
    cat_name = {c["id"]: c["name"] for c in doc.get("categories", [])}
    seen: dict[str, dict[str, set]] = {name: {} for name in cat_name.values()}
    structured: set[tuple[str, str]] = set()
    for ann in doc.get("annotations", []):
        name = cat_name.get(ann.get("category_id"), "?")
        attrs = seen.setdefault(name, {})
        for k, v in (ann.get("attributes") or {}).items():
            if k in BUILTIN_ATTRIBUTES:
                continue
            if is_structured(v):
                structured.add((name, k))
                attrs.setdefault(k, set())
            else:
                attrs.setdefault(k, set()).add(v)
    labels = []
    for name in cat_name.values():
        specs = []
        for attr, values in sorted(seen[name].items()):
            if (name, attr) in structured:
                specs.append(AttributeSpec(attr, "text", ("",), ""))
            elif all(isinstance(v, bool) for v in values):
                specs.append(AttributeSpec(attr, "checkbox", ("false",), "false"))
            elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                lo, hi = min(values), max(values)
                specs.append(AttributeSpec(attr, "number", (str(min(lo, 0)), str(max(hi, 1) * 10), "1"), str(lo)))
            else:
                strs = sorted({str(v) for v in values})
                if len(strs) <= max_select_values:
                    specs.append(AttributeSpec(attr, "select", tuple(strs), strs[0]))
                else:
                    specs.append(AttributeSpec(attr, "text", ("",), ""))
        labels.append(LabelSpec(name, "any", tuple(specs)))
    return labels


def label_problems(existing: Iterable[LabelSpec], wanted: Iterable[LabelSpec]) -> list[str]:
    """Why `existing` (a CVAT project's labels) cannot hold data labelled with `wanted`; [] if it can."""
    have = {lab.name: lab for lab in existing}
    problems = []
    for w in wanted:
        e = have.get(w.name)
        if e is None:
            problems.append(f"label {w.name!r} is missing")
            continue
        if e.type not in ("any", w.type) and w.type != "any":
            problems.append(f"label {w.name!r} is {e.type!r} in CVAT, we need {w.type!r}")
        e_attrs = {a.name: a for a in e.attributes}
        for a in w.attributes:
            ea = e_attrs.get(a.name)
            if ea is None:
                problems.append(f"label {w.name!r} has no attribute {a.name!r}")
            elif ea.input_type != a.input_type:
                problems.append(
                    f"attribute {w.name}.{a.name} is {ea.input_type!r} in CVAT, we need {a.input_type!r}"
                )
            elif a.input_type in ("select", "radio") and not set(a.values) <= set(ea.values):
                missing = sorted(set(a.values) - set(ea.values))
                problems.append(f"attribute {w.name}.{a.name} lacks values {missing}")
    return problems


def coco_problems(doc: dict[str, Any], labels: Iterable[LabelSpec]) -> list[str]:
    """What in a COCO document CVAT would reject or silently drop, given the task's labels."""
    have = {lab.name: lab for lab in labels}
    cat_name = {c["id"]: c["name"] for c in doc.get("categories", [])}
    problems = [f"category {n!r} is not a label of the task" for n in cat_name.values() if n not in have]
    reported: set[tuple[str, str]] = set()
    for ann in doc.get("annotations", []):
        lab = have.get(cat_name.get(ann.get("category_id"), ""))
        if lab is None:
            continue
        declared = {a.name for a in lab.attributes} | BUILTIN_ATTRIBUTES
        for k in ann.get("attributes") or {}:
            if k not in declared and (lab.name, k) not in reported:
                reported.add((lab.name, k))
                problems.append(f"attribute {k!r} is not declared on label {lab.name!r} (CVAT would drop it)")
        shape = _shape(ann)
        if lab.type in _SHAPE_OF_TYPE and _SHAPE_OF_TYPE[lab.type] != shape and (lab.name, shape) not in reported:
            reported.add((lab.name, shape))
            problems.append(f"label {lab.name!r} only allows {lab.type}s, the COCO has a {shape}")
    return problems
