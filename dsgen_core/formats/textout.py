"""Per-image text files rendered by DuckDB (vectorised, in parallel) and written by a few threads.

Label writers describe one image's file as SQL over the Arrow tables (`annotations a` joined to
`images i` and the class map `m`); DuckDB formats every row in C++ and `write_files` creates the
files with plain `os` calls, skipping pathlib's per-path overhead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa

from dsgen_core.formats.classmap import ClassMap

__all__ = ["SHAPE_SQL", "query", "stream", "write_files", "xml_escape"]

SHAPE_SQL = "coalesce(json_extract_string(a.extra, '$.shape'), '')"


def xml_escape(expr: str) -> str:
    """SQL escaping the XML special characters of a text expression."""
    return f"replace(replace(replace({expr}, '&', '&amp;'), '<', '&lt;'), '>', '&gt;')"


def stream(sql: str, tables: dict[str, pa.Table], cmap: ClassMap | None = None,
           batch_rows: int = 65536) -> Iterator[pa.RecordBatch]:
    """Record batches of `sql` over the named Arrow tables and the class map `cmap(category_id, cls, name)`."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute(f"SET threads={os.cpu_count() or 1}")
        for name, table in tables.items():
            con.register(name, table)
        if cmap is not None:
            ids = sorted(cmap.by_category)
            con.register("cmap", pa.table({"category_id": pa.array(ids, pa.int64()),
                                           "cls": pa.array([cmap.by_category[c] for c in ids], pa.int64()),
                                           "name": pa.array([cmap.names[cmap.by_category[c]] for c in ids],
                                                            pa.string())}))
        yield from con.sql(sql).to_arrow_reader(batch_rows)
    finally:
        con.close()


def query(sql: str, annotations: pa.Table, images: pa.Table, cmap: ClassMap | None = None) -> pa.Table:
    """`stream` gathered into one table, with `annotations` and `images` registered."""
    batches = list(stream(sql, {"annotations": annotations, "images": images}, cmap))
    return pa.Table.from_batches(batches) if batches else pa.table({})


def _write_chunk(items: Sequence[tuple[str, bytes]]) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    for path, data in items:
        fd = os.open(path, flags, 0o644)
        try:
            if data:
                os.write(fd, data)
        finally:
            os.close(fd)


def write_files(paths: Sequence[str], texts: Sequence[str | None], workers: int = 4) -> None:
    """Write each text (None → empty file) to its path, creating parent folders once."""
    for d in sorted({os.path.dirname(p) for p in paths}):
        os.makedirs(d, exist_ok=True)
    items = [(p, t.encode() if t else b"") for p, t in zip(paths, texts, strict=True)]
    step = max(1, len(items) // (workers * 4) + 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(_write_chunk, [items[i : i + step] for i in range(0, len(items), step)]))
