"""Writing curation inside one catalog transaction, stamped with the transaction's sequence number.

Tags: one op row per tag holding the ids whose state it changes (the caller computes them from the
version's engine, synced under the sequence lock). Metadata: upserts of whole rows, one per
(version, image, key), written only where the value really changes — so undo knows exactly what it did.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Connection, insert, select
from sqlalchemy.orm import Session

from dsgen_core.catalog.curation_models import CurationSeq, ImageMeta, TagOp
from dsgen_core.catalog.models import utcnow
from dsgen_core.curation import idset
from dsgen_core.curation.values import Typed

_CHUNK = 5000  # ids per IN list: below SQLite's variable limit, small enough for PostgreSQL plans

MetaRow = tuple[int, str, str, str | None, float | None, bool | None, bool]  # id, key, type, s, n, b, deleted


@dataclass(frozen=True)
class TagChange:
    """`tag` made present (or absent) on `ids` (sorted int64); as asked, or as written (the changed ids)."""

    tag: str
    present: bool
    ids: np.ndarray
    op_id: int | None = None


@dataclass
class ChangeSet:
    """The rows one transaction wrote, as written: lets this process update its search cache in place."""

    version_id: int
    seq: int
    tags: list[TagChange] = field(default_factory=list)
    meta: list[MetaRow] = field(default_factory=list)
    before: list[list[Any]] = field(default_factory=list)  # [image_id, key, type|None, s, n, b] per meta row

    @property
    def count(self) -> int:
        return sum(len(t.ids) for t in self.tags) + len(self.meta)

    @property
    def images(self) -> int:
        parts = [t.ids for t in self.tags]
        if self.meta:
            parts.append(np.fromiter((r[0] for r in self.meta), np.int64, len(self.meta)))
        if len(parts) <= 1:  # each part holds distinct ids
            return len(parts[0]) if parts else 0
        return len(np.unique(np.concatenate(parts)))


def _insert(s: Session):  # noqa: ANN202 - the dialect's insert construct
    if s.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def bump(s: Session, version_id: int) -> int:
    """Take the next sequence number of the version. The row stays locked until commit, so edits of one
    version commit in sequence order and a reader that has seen N has seen every edit up to N."""
    stmt = _insert(s)(CurationSeq).values(version_id=version_id, seq=1)
    stmt = stmt.on_conflict_do_update(index_elements=["version_id"], set_={"seq": CurationSeq.seq + 1})
    return int(s.execute(stmt.returning(CurationSeq.seq)).scalar_one())


def current_seq(conn: Connection | Session, version_id: int) -> int:
    return int(conn.execute(select(CurationSeq.seq).where(CurationSeq.version_id == version_id)).scalar() or 0)


def _chunks(values: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def write_tag_op(s: Session, version_id: int, seq: int, user_id: int | None, change: TagChange) -> TagChange:
    """One op row for a tag change (its ids: those whose state it changes); returns it with the op id."""
    op_id = s.connection().execute(insert(TagOp).values(
        version_id=version_id, seq=seq, tag=change.tag, present=change.present, count=len(change.ids),
        image_ids=idset.encode(change.ids), user_id=user_id, created_at=utcnow()).returning(TagOp.id)).scalar_one()
    return TagChange(change.tag, change.present, change.ids, int(op_id))


def op_image_ids(s: Session, ops: list[int]) -> dict[int, np.ndarray]:
    """The image ids of tag ops by op id (what undo reverts)."""
    rows = s.execute(select(TagOp.id, TagOp.image_ids).where(TagOp.id.in_(ops))).all() if ops else []
    return {int(i): idset.decode(blob) for i, blob in rows}


def tag_ops_since(conn: Connection | Session, version_id: int, after: int) -> list[TagChange]:
    rows = conn.execute(select(TagOp.id, TagOp.tag, TagOp.present, TagOp.image_ids).where(
        TagOp.version_id == version_id, TagOp.seq > after).order_by(TagOp.seq, TagOp.id)).all()
    return [TagChange(tag, bool(present), idset.decode(blob), int(i)) for i, tag, present, blob in rows]


def fold_tags(ops: list[TagChange]) -> dict[str, np.ndarray]:
    """The state the ops leave, in order: tag → sorted ids that have it (tags left on no image dropped)."""
    state: dict[str, set[int]] = {}
    for op in ops:
        have = state.setdefault(op.tag, set())
        if op.present:
            have.update(op.ids.tolist())
        else:
            have.difference_update(op.ids.tolist())
    return {tag: np.array(sorted(ids), dtype=np.int64) for tag, ids in sorted(state.items()) if ids}


def tag_state(conn: Connection | Session, version_id: int) -> dict[str, np.ndarray]:
    """Every present tag of a version with its image ids, read from the catalog."""
    return fold_tags(tag_ops_since(conn, version_id, -1))


def active_meta(s: Session, version_id: int, key: str, image_ids: list[int]) -> dict[int, Typed]:
    q = select(ImageMeta.image_id, ImageMeta.value_type, ImageMeta.value_str, ImageMeta.value_num,
               ImageMeta.value_bool).where(ImageMeta.version_id == version_id, ImageMeta.key == key,
                                           ImageMeta.deleted.is_(False))
    if len(image_ids) <= _CHUNK:
        q = q.where(ImageMeta.image_id.in_(image_ids))
    return {r[0]: Typed(r[1], r[2], r[3], r[4]) for r in s.execute(q)}


def write_meta(s: Session, version_id: int, seq: int, user_id: int | None,
               wanted: Mapping[tuple[int, str], Typed | None]) -> tuple[list[MetaRow], list[list[Any]]]:
    """Set (Typed) or delete (None) each (image, key); returns the changed rows and their values before."""
    by_key: dict[str, list[int]] = {}
    for image_id, key in wanted:
        by_key.setdefault(key, []).append(image_id)
    changed: list[MetaRow] = []
    before: list[list[Any]] = []
    for key, ids in by_key.items():
        active = active_meta(s, version_id, key, ids)
        for i in ids:
            new, old = wanted[(i, key)], active.get(i)
            if new == old:
                continue
            row = old if new is None else new
            changed.append((i, key, row.type, row.str_, row.num, row.bool_, new is None))  # type: ignore[union-attr]
            before.append([i, key, *((old.type, old.str_, old.num, old.bool_) if old else (None,) * 4)])
    if changed:
        now = utcnow()
        rows = [dict(version_id=version_id, image_id=i, key=k, value_type=t, value_str=vs, value_num=vn,
                     value_bool=vb, deleted=d, seq=seq, updated_by=user_id, updated_at=now)
                for i, k, t, vs, vn, vb, d in changed]
        stmt = _insert(s)(ImageMeta)
        cols = ("value_type", "value_str", "value_num", "value_bool", "deleted", "seq", "updated_by", "updated_at")
        stmt = stmt.on_conflict_do_update(index_elements=["version_id", "image_id", "key"],
                                          set_={c: getattr(stmt.excluded, c) for c in cols})
        conn = s.connection()  # Core executemany: the ORM's bulk path costs ~10 µs a row more
        for part in _chunks(rows):
            conn.execute(stmt, part)
    return changed, before


def rows_since(conn: Connection | Session, version_id: int, after: int) -> tuple[list[TagChange], list[MetaRow]]:
    """Every tag op and metadata row (tombstones included) written after sequence `after`: the cache's refresh."""
    tags = tag_ops_since(conn, version_id, after)
    meta = conn.execute(select(ImageMeta.image_id, ImageMeta.key, ImageMeta.value_type, ImageMeta.value_str,
                               ImageMeta.value_num, ImageMeta.value_bool, ImageMeta.deleted).where(
        ImageMeta.version_id == version_id, ImageMeta.seq > after)).all()
    return tags, [tuple(r) for r in meta]  # type: ignore[misc]
