"""Writing and reading a version's Parquet tables, and its deterministic content hash."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dsgen_core.lake.decimals import decimal_scales, decode_decimals, encode_decimals
from dsgen_core.lake.schema import TABLE_KEYS, TABLE_SCHEMAS
from dsgen_core.lake.tables import DatasetTables

HASH_SCHEME = "dsgen-content-v1"
# Unique or continuous columns: a dictionary only costs time there.
_NO_DICTIONARY = {"annotation_id", "bbox_x", "bbox_y", "bbox_w", "bbox_h", "area", "score", "polygons", "keypoints"}
# Columns that say where bytes are stored, not what they are: left out of the content hash.
HASH_EXCLUDED = {"images": {"uri"}}


def write_tables(tables: DatasetTables, folder: Path) -> None:
    """Write the three tables and meta.json into `folder` (created; must not hold another version)."""
    folder.mkdir(parents=True, exist_ok=True)
    t = prepared(tables)
    for name in TABLE_SCHEMAS:
        table = t.table(name)
        if name == "annotations":
            table = encode_decimals(table)
        split = _split_columns(table.schema)
        pq.write_table(
            table,
            folder / f"{name}.parquet",
            compression="zstd",
            compression_level=3,
            row_group_size=256_000,
            use_dictionary=[c for c in table.column_names if c not in _NO_DICTIONARY and c not in split],
            use_byte_stream_split=split,
        )
    (folder / "meta.json").write_bytes(orjson.dumps(t.meta, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2))


def publish(tables: DatasetTables, staging: Path, final: Path) -> tuple[DatasetTables, str]:
    """Write a version's tables into `staging`, hash them meanwhile, then move the folder to `final`
    in one rename: a version folder is either complete or absent. Returns the prepared tables and hash."""
    from concurrent.futures import ThreadPoolExecutor

    tables = prepared(tables)
    # Hashing and writing both spend their time in Arrow/zstd/sha256 without the GIL.
    with ThreadPoolExecutor(max_workers=1) as pool:
        hashing = pool.submit(content_hash, tables)
        write_tables(tables, staging)
        digest = hashing.result()
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, final)
    return tables, digest


def prepared(tables: DatasetTables) -> DatasetTables:
    """Conformed to the lake schema and sorted by each table's key; cheap when already so."""
    t = tables.conformed()
    for name in TABLE_SCHEMAS:
        table = t.table(name)
        key = table.column(TABLE_KEYS[name])
        if len(table) > 1 and not _ascending(key):
            table = table.sort_by(TABLE_KEYS[name])
        setattr(t, name, table)
    return t


def _ascending(column: pa.ChunkedArray) -> bool:
    values = column.to_numpy()
    return bool(np.all(values[1:] >= values[:-1]))


def _split_columns(schema: pa.Schema) -> list[str]:
    """Byte-stream-split suits the scaled integers (their high bytes repeat); plain floats with
    few decimals compress better without it."""
    paths = {"polygons": "polygons.list.element.list.element"}
    return [paths.get(name, name) for name in decimal_scales(schema)]


def read_tables(folder: Path, columns: dict[str, list[str]] | None = None) -> DatasetTables:
    parts = {
        name: pq.read_table(folder / f"{name}.parquet", columns=(columns or {}).get(name))
        for name in TABLE_SCHEMAS
    }
    parts["annotations"] = decode_decimals(parts["annotations"])
    meta = orjson.loads((folder / "meta.json").read_bytes()) if (folder / "meta.json").exists() else {}
    return DatasetTables(meta=meta, **parts)


def content_hash(tables: DatasetTables) -> str:
    """sha256 over the sorted tables, column by column, and meta; image bytes enter through `sha256`."""
    h = hashlib.sha256(HASH_SCHEME.encode())
    t = prepared(tables)
    for name in TABLE_SCHEMAS:
        table = t.table(name)
        h.update(name.encode())
        for column in table.column_names:
            if column in HASH_EXCLUDED.get(name, ()):
                continue
            h.update(column.encode())
            _hash_column(h, table.column(column).combine_chunks())
    h.update(orjson.dumps(_canonical(t.meta), option=orjson.OPT_SORT_KEYS))
    return h.hexdigest()


def _hash_column(h: Any, array: pa.Array) -> None:
    """Feed one column's canonical bytes: the slots under nulls of fixed-width columns are
    whatever the producer left there (DuckDB leaves garbage), so they are zeroed first."""
    if array.null_count and pa.types.is_primitive(array.type):
        h.update(np.packbits(array.is_valid().to_numpy(zero_copy_only=False)).tobytes())
        zero = pa.scalar(False) if pa.types.is_boolean(array.type) else pa.scalar(0, array.type)
        array = pc.fill_null(array, zero)
    sink = pa.BufferOutputStream()
    schema = pa.schema([pa.field("c", array.type)])
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_batch(pa.record_batch([array], schema=schema))
    h.update(sink.getvalue())


def _canonical(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if k not in {"source_path"}}


def remove_folder(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
