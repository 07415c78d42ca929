"""SQL that reads one lake table with its packed columns decoded, for DuckDB queries on a version."""

from __future__ import annotations

from pathlib import Path


def table_path(folder: Path, table: str) -> Path:
    return folder / f"{table}.parquet"


def scan_sql(folder: Path, table: str, param: str) -> str:
    """A FROM-clause item for `table` of the version in `folder`; its path is bound as `$param`.

    Scaled-integer columns (see lake/decimals.py) come out as the original doubles: int / scale in
    DuckDB is the same correctly rounded division as on write, so values are bit-identical.
    """
    import pyarrow.parquet as pq  # here: a process that only counts never pays for pyarrow

    from dsgen_core.lake.decimals import DECIMAL_COLUMNS, decimal_scales

    scales = decimal_scales(pq.read_schema(table_path(folder, table)))
    if not scales:
        return f"read_parquet(${param})"
    parts = []
    for column, scale in scales.items():
        if column not in DECIMAL_COLUMNS:  # only names we wrote; never text from the file
            raise ValueError(f"unexpected packed column {column!r} in {table_path(folder, table)}")
        divisor = f"{int(scale)}.0"
        if column == "polygons":
            parts.append(f"list_transform(polygons, lambda r: list_transform(r, lambda v: v / {divisor})) AS polygons")
        else:
            parts.append(f"{column} / {divisor} AS {column}")
    return f"(SELECT * REPLACE ({', '.join(parts)}) FROM read_parquet(${param}))"  # noqa: S608 - names from DECIMAL_COLUMNS


def scan_params(folder: Path, **tables: str) -> dict[str, str]:
    """Parameter values for scan_sql items: param name -> table name."""
    return {param: str(table_path(folder, table)) for param, table in tables.items()}
