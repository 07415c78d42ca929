"""A clicked bar or heatmap cell → a DSL filter (and the Explore link that opens the gallery on it).

Every value is quoted or formatted so that the DSL reads it back exactly; rows that the language
cannot express (centre cells, image aspect ratios, border-touching boxes) give None.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

EXPLORE_PATH = "/explore"
BBOX_FIELDS = {"width": "bbox.w", "height": "bbox.h", "area": "bbox.area", "aspect": "bbox.aspect"}
SIZE_BUCKETS = {"small": (None, 32**2), "medium": (32**2, 96**2), "large": (96**2, None)}


def quote(text: object) -> str:
    """A DSL text literal: always quoted, with backslashes and quotes escaped."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def number(value: float | int) -> str:
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{value!r} is not a finite number")
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


def guess_value(text: object) -> str:
    """A value shown as text whose type is unknown (cross-analysis levels): numbers and booleans bare."""
    s = str(text)
    if s in ("true", "false"):
        return s
    try:
        return number(float(s))
    except ValueError:
        return quote(s)


def combine(base: str, term: str | None) -> str | None:
    """The base query narrowed by `term` (the base is parenthesised so its ORs stay inside)."""
    if term is None:
        return None
    return f"({base.strip()}) {term}" if base and base.strip() else term


def explore_url(version_id: int, query: str) -> str:
    return f"{EXPLORE_PATH}?{urlencode({'version': int(version_id), 'q': query})}"


def _range(field: str, row: dict[str, Any]) -> str:
    """Half-open bin [start, end); the last bin of a histogram is closed (`bin_end` is its maximum)."""
    hi_op = "<=" if row.get("last") else "<"
    return f"{field}>={number(row['bin_start'])} {field}{hi_op}{number(row['bin_end'])}"


def term_for(insight: str, table: str, row: dict[str, Any]) -> str | None:
    """The DSL condition matching the images behind one row of an insight table, or None."""
    key = (insight, table)
    if key in (("classes", "classes"), ("issues", "rare_classes")):
        return f"category:{quote(row['category'])}"
    if key == ("tags", "tags"):
        return f"tag:{quote(row['tag'])}"
    if key == ("metadata", "coverage"):
        return f"has:metadata.{row['key']}"
    if key == ("metadata", "values"):
        value = row["value"] if row.get("value_type") == "boolean" else quote(row["value"])
        return f"metadata.{row['key']}:{value}"
    if key == ("metadata", "numeric"):
        return _range(f"metadata.{row['key']}", row)
    if insight == "resolution" and table in ("width", "height"):
        return _range(table, row)
    if key == ("resolution", "file_size"):
        return _range("size", row)
    if key == ("resolution", "resolution"):
        return f"width:{number(row['width'])} height:{number(row['height'])}"
    if key == ("boxes", "per_image"):
        return f"boxes:{number(row['boxes'])}"
    if key == ("boxes", "shape"):
        return f"ann:(category:{quote(row['category'])} {_range(BBOX_FIELDS[row['measure']], row)})"
    if key == ("boxes", "sizes") and row.get("bucket") in SIZE_BUCKETS:
        lo, hi = SIZE_BUCKETS[row["bucket"]]
        parts = [f"category:{quote(row['category'])}"]
        parts += [f"area>={lo}"] if lo is not None else []
        parts += [f"area<{hi}"] if hi is not None else []
        return f"ann:({' '.join(parts)})"
    if key == ("attributes", "attributes"):
        return f"ann:(category:{quote(row['category'])} attr.{row['attribute']}:{quote(row['value'])})"
    if key == ("cross", "contingency"):
        return _contingency_term(row)
    if key == ("cross", "cooccurrence"):
        return f"category:{quote(row['category_a'])} category:{quote(row['category_b'])}"
    if key == ("issues", "unannotated"):
        return f"id:{number(row['image_id'])}"
    if key == ("issues", "duplicates"):
        return f"sha:{row['sha256']}"
    return None


def _contingency_term(row: dict[str, Any]) -> str:
    variable, value, category = row["variable"], row["value"], quote(row["category"])
    if variable == "tag":
        return f"tag:{quote(value)} category:{category}"
    if variable.startswith("metadata."):
        return f"{variable}:{guess_value(value)} category:{category}"
    return f"ann:(category:{category} {variable}:{quote(value)})"


def dsl_for(base: str, insight: str, table: str, row: dict[str, Any]) -> str | None:
    """The subset's query narrowed to one row: what the gallery should show when it is clicked."""
    return combine(base, term_for(insight, table, row))
