"""The in-memory form of one dataset version: three Arrow tables plus format metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from dsgen_core.lake.schema import TABLE_SCHEMAS


@dataclass
class DatasetTables:
    """Arrow tables in the lake schema; `meta` keeps format-level data (COCO info, licenses, extras)."""

    images: pa.Table
    annotations: pa.Table
    categories: pa.Table
    meta: dict[str, Any] = field(default_factory=dict)

    def table(self, name: str) -> pa.Table:
        return getattr(self, name)

    def conformed(self) -> DatasetTables:
        """Return a copy whose tables are cast to the exact lake schemas (column order and types)."""
        out = {}
        for name, schema in TABLE_SCHEMAS.items():
            t = self.table(name)
            out[name] = t.select(schema.names).cast(schema)
        return DatasetTables(meta=dict(self.meta), **out)
