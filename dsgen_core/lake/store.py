"""Writing and reading a version's Parquet tables, and its deterministic content hash."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from dsgen_core.lake.schema import TABLE_KEYS, TABLE_SCHEMAS
from dsgen_core.lake.tables import DatasetTables

HASH_SCHEME = "dsgen-content-v1"
# Columns that say where bytes are stored, not what they are: left out of the content hash.
HASH_EXCLUDED = {"images": {"uri"}}


def write_tables(tables: DatasetTables, folder: Path) -> None:
    """Write the three tables and meta.json into `folder` (created; must not hold another version)."""
    folder.mkdir(parents=True, exist_ok=True)
    t = tables.conformed()
    for name in TABLE_SCHEMAS:
        table = t.table(name).sort_by(TABLE_KEYS[name])
        pq.write_table(
            table,
            folder / f"{name}.parquet",
            compression="zstd",
            compression_level=6,
            row_group_size=256_000,
            use_byte_stream_split=_float_columns(table.schema),
        )
    (folder / "meta.json").write_bytes(orjson.dumps(t.meta, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2))


def _float_columns(schema: pa.Schema) -> list[str]:
    return [f.name for f in schema if pa.types.is_floating(f.type)]


def read_tables(folder: Path, columns: dict[str, list[str]] | None = None) -> DatasetTables:
    parts = {
        name: pq.read_table(folder / f"{name}.parquet", columns=(columns or {}).get(name))
        for name in TABLE_SCHEMAS
    }
    meta = orjson.loads((folder / "meta.json").read_bytes()) if (folder / "meta.json").exists() else {}
    return DatasetTables(meta=meta, **parts)


def content_hash(tables: DatasetTables) -> str:
    """sha256 over the sorted tables (Arrow IPC bytes) and meta; image bytes enter through `sha256`."""
    h = hashlib.sha256(HASH_SCHEME.encode())
    t = tables.conformed()
    for name in TABLE_SCHEMAS:
        table = t.table(name).sort_by(TABLE_KEYS[name])
        drop = [c for c in HASH_EXCLUDED.get(name, ()) if c in table.column_names]
        table = table.drop_columns(drop).combine_chunks()
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=1 << 30)
        h.update(name.encode())
        h.update(sink.getvalue())
    h.update(orjson.dumps(_canonical(t.meta), option=orjson.OPT_SORT_KEYS))
    return h.hexdigest()


def _canonical(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if k not in {"source_path"}}


def remove_folder(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
