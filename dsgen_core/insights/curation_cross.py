"""Tag × class and metadata × class contingency tables from the search engine's arrays.

The per-image class counts are a matrix over image positions and tags / metadata values are
position lists (`search/curation_index.py`), so a table is a few row sums: no join of the subset
with the curation rows. The SQL form (`cross._contingency_by_counts`) gives the same tables and is
the reference in the tests; numbers are written as DuckDB writes DOUBLE as text, by DuckDB.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from dsgen_core.search.curation_index import NO_CODE, MetaColumn
from dsgen_core.search.engine import VersionEngine

SCHEMA = {"variable": pl.String, "value": pl.String, "category": pl.String, "instances": pl.Int64}


def curation_contingency(engine: VersionEngine, subset: np.ndarray, ids: list[int], chosen: list[str],
                         max_keys: int, top: int) -> pl.DataFrame:
    """Rows (variable, value, category, instances) for `tag` and `metadata.<key>` over the subset (a
    boolean mask over positions), each variable's `top` values by instances (ties by value), ordered
    tag first, then the keys as chosen (or by name), then value and category."""
    counts = engine.count_matrix(ids)
    names = _category_names(engine, ids)  # (sorted distinct names, each count column's index among them)
    index = engine.curation
    parts = [_variable("tag", _tag_groups(index.tags, subset), counts, names, top)]
    meta = index.meta
    keys = [k for k in chosen] if chosen else sorted(k for k, c in meta.items() if (c.present & subset).any())
    for key in keys[:max_keys]:
        column = meta.get(key)
        if column is not None:
            parts.append(_variable(f"metadata.{key}", _value_groups(engine, column, subset), counts, names, top))
    frames = [p for p in parts if p.height]
    return pl.concat(frames) if frames else pl.DataFrame(schema=SCHEMA)


def _tag_groups(tags: dict[str, np.ndarray], subset: np.ndarray) -> dict[str, np.ndarray]:
    out = {}
    for tag, pos in tags.items():
        inside = pos[subset[pos]]
        if len(inside):
            out[tag] = inside
    return out


def _value_groups(engine: VersionEngine, column: MetaColumn, subset: np.ndarray) -> dict[str, np.ndarray]:
    """Positions per value text, as the SQL's CASE writes it: texts as they are, booleans as true/false,
    numbers as DuckDB casts DOUBLE to VARCHAR (values with the same text are one value)."""
    out: dict[str, list[np.ndarray]] = {}
    held = np.flatnonzero(column.present & subset)
    codes = column.codes[held]
    texts = held[codes != NO_CODE]
    for code in np.unique(column.codes[texts]):
        out.setdefault(column.texts[int(code)], []).append(texts[column.codes[texts] == code])
    numbers = held[~np.isnan(column.numbers[held])]
    if len(numbers):
        values, inverse = np.unique(column.numbers[numbers], return_inverse=True)
        written = engine.fetchall("SELECT CAST($v::DOUBLE[] AS VARCHAR[])",
                                  {"v": values.tolist()})[0][0]
        for n, text in enumerate(written):
            out.setdefault(text, []).append(numbers[inverse == n])
    for flag, text in ((1, "true"), (0, "false")):
        hit = held[column.flags[held] == flag]
        if len(hit):
            out.setdefault(text, []).append(hit)
    return {text: np.concatenate(parts) for text, parts in out.items()}


def _variable(variable: str, groups: dict[str, np.ndarray], counts: np.ndarray,
              names: tuple[list[str], np.ndarray], top: int) -> pl.DataFrame:
    if not groups:
        return pl.DataFrame(schema=SCHEMA)
    values = sorted(groups)
    sums = np.stack([counts[groups[v]].sum(axis=0, dtype=np.int64) for v in values])
    totals = sums.sum(axis=1)
    ranked = sorted((i for i in range(len(values)) if totals[i] > 0), key=lambda i: (-totals[i], values[i]))[:top]
    keep = sorted(ranked, key=lambda i: values[i])
    by_name, column_of = names
    rows: dict[str, list] = {"variable": [], "value": [], "category": [], "instances": []}
    for i in keep:
        named = np.zeros(len(by_name), np.int64)
        np.add.at(named, column_of, sums[i])
        for j in np.flatnonzero(named):
            rows["variable"].append(variable)
            rows["value"].append(values[i])
            rows["category"].append(by_name[j])
            rows["instances"].append(int(named[j]))
    return pl.DataFrame(rows, schema=SCHEMA)


def _category_names(engine: VersionEngine, ids: list[int]) -> tuple[list[str], np.ndarray]:
    """Ids sharing a name add up: the distinct names, sorted, and each id's index among them."""
    name_of = dict(engine.fetchall("SELECT category_id, name FROM categories"))
    by_name = sorted({name_of[i] for i in ids})
    return by_name, np.array([by_name.index(name_of[i]) for i in ids], dtype=np.int64)
