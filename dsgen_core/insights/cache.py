"""Insight results cached per (version, curation state, query, insight, settings): the App's small LRU
in front of catalog rows (`insight_results`), so a worker's precompute serves the web process."""

from __future__ import annotations

import hashlib
import io
import json
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa
import pyarrow.ipc as ipc
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from dsgen_core.catalog.insight_models import InsightResult
from dsgen_core.query.plan import Plan

if TYPE_CHECKING:
    from dsgen_core.app import App

Tables = dict[str, pl.DataFrame]


def cache_key(seq: int, plan: Plan, insight: str, settings: dict, peers: list | None = None) -> str:
    """sha256 of the inputs (the bound query, not its spelling); seq is -1 when the answer does not depend
    on the curation rows. `peers`: the subsets whose ranges a side-by-side histogram shares (its edges
    depend on them)."""
    parts: list = [seq, repr(plan.key), insight, settings] + ([peers] if peers is not None else [])
    raw = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def encode(tables: Tables) -> bytes:
    """All tables of a result in one Arrow IPC stream per table, framed by a JSON header (types kept exactly)."""
    blobs = []
    for frame in tables.values():
        sink = io.BytesIO()
        table = frame.to_arrow()
        with ipc.new_stream(sink, table.schema) as w:
            w.write_table(table)
        blobs.append(sink.getvalue())
    header = json.dumps([[name, len(b)] for name, b in zip(tables, blobs, strict=True)]).encode()
    return len(header).to_bytes(4, "big") + header + b"".join(blobs)


def decode(payload: bytes) -> Tables:
    n = int.from_bytes(payload[:4], "big")
    pos = 4 + n
    out: Tables = {}
    for name, size in json.loads(payload[4:pos]):
        table = ipc.open_stream(pa.BufferReader(payload[pos:pos + size])).read_all()
        out[name] = pl.from_arrow(table)  # type: ignore[assignment]
        pos += size
    return out


def get(app: App, version_id: int, key: str) -> Tables | None:
    hit = app.insight_results.get((int(version_id), key))
    if hit is not None:
        return hit
    with app.catalog.session() as s:
        payload = s.scalar(select(InsightResult.payload).where(InsightResult.version_id == version_id,
                                                               InsightResult.cache_key == key))
    if payload is None:
        return None
    tables = decode(payload)
    app.insight_results.put((int(version_id), key), tables)
    return tables


def put(app: App, version_id: int, key: str, insight: str, seq: int, tables: Tables,
        persist: bool = True) -> None:
    """Remember a result; persisted rows of older curation states of the same insight are dropped."""
    app.insight_results.put((int(version_id), key), tables)
    if not persist:
        return
    try:
        with app.catalog.session() as s:
            if seq >= 0:
                s.execute(delete(InsightResult).where(InsightResult.version_id == version_id,
                                                      InsightResult.insight == insight,
                                                      InsightResult.seq >= 0, InsightResult.seq < seq))
            s.add(InsightResult(version_id=version_id, cache_key=key, insight=insight, seq=seq,
                                payload=encode(tables)))
    except IntegrityError:
        pass  # another process stored the same result first
