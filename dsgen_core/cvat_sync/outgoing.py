"""What the COCO sent to CVAT changes from our tables: CVAT holds attribute values as text, so objects and lists
go as JSON text (their attributes are declared as text), and only the rows that hold one are touched."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dsgen_core.cvat.labels import is_structured

__all__ = ["json_text_attributes"]

# a member whose value opens an object or a list; a false hit (inside a string) is parsed and left alone
_NESTED = r':\s*[\[{]'


def _as_text(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")) if is_structured(value) else value


def json_text_attributes(anns: pa.Table) -> pa.Table:
    """The annotations with every object or list attribute value replaced by its JSON text."""
    col = anns.column("attributes")
    hits = pc.fill_null(pc.match_substring_regex(col, _NESTED), False)
    rows = np.flatnonzero(hits.to_numpy(zero_copy_only=False))
    if not len(rows):
        return anns
    values = col.to_pylist()
    for i in rows:
        attrs = json.loads(values[i])
        if isinstance(attrs, dict) and any(is_structured(v) for v in attrs.values()):
            values[i] = json.dumps({k: _as_text(v) for k, v in attrs.items()}, ensure_ascii=False,
                                   separators=(",", ":"))
    return anns.set_column(anns.schema.get_field_index("attributes"), "attributes",
                           pa.array(values, col.type))
