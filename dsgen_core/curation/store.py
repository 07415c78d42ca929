"""Writing curation rows inside one catalog transaction: every write upserts whole rows
(one per (version, image, tag) / (version, image, key)) stamped with the transaction's sequence
number, and writes only rows whose state really changes — so undo knows exactly what it did.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from dsgen_core.catalog.curation_models import CurationSeq, ImageMeta, ImageTag
from dsgen_core.catalog.models import utcnow
from dsgen_core.curation.values import Typed

_CHUNK = 5000  # ids per IN list: below SQLite's variable limit, small enough for PostgreSQL plans

TagRow = tuple[int, str, bool]  # image_id, tag, deleted
MetaRow = tuple[int, str, str, str | None, float | None, bool | None, bool]  # id, key, type, s, n, b, deleted


@dataclass
class ChangeSet:
    """The rows one transaction wrote, as written: lets this process update its search cache in place."""

    version_id: int
    seq: int
    tags: list[TagRow] = field(default_factory=list)
    meta: list[MetaRow] = field(default_factory=list)
    before: list[list[Any]] = field(default_factory=list)  # [image_id, key, type|None, s, n, b] per meta row

    @property
    def count(self) -> int:
        return len(self.tags) + len(self.meta)

    @property
    def images(self) -> int:
        return len({r[0] for r in self.tags} | {r[0] for r in self.meta})


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


def active_tags(s: Session, version_id: int, tag: str, image_ids: list[int]) -> set[int]:
    q = select(ImageTag.image_id).where(ImageTag.version_id == version_id, ImageTag.tag == tag,
                                        ImageTag.deleted.is_(False))
    if len(image_ids) <= _CHUNK:
        return set(s.scalars(q.where(ImageTag.image_id.in_(image_ids))))
    return set(s.scalars(q))  # the tag's rows in the version: one index range instead of many IN lists


def write_tags(s: Session, version_id: int, seq: int, user_id: int | None,
               wanted: Mapping[tuple[int, str], bool]) -> list[TagRow]:
    """Make each (image, tag) present (True) or absent (False); returns the rows that changed."""
    by_tag: dict[str, list[int]] = {}
    for image_id, tag in wanted:
        by_tag.setdefault(tag, []).append(image_id)
    changed: list[TagRow] = []
    for tag, ids in by_tag.items():
        active = active_tags(s, version_id, tag, ids)
        changed += [(i, tag, not wanted[(i, tag)]) for i in ids if wanted[(i, tag)] != (i in active)]
    if changed:
        now = utcnow()
        rows = [dict(version_id=version_id, image_id=i, tag=t, deleted=d, seq=seq, updated_by=user_id,
                     updated_at=now) for i, t, d in changed]
        stmt = _insert(s)(ImageTag)
        stmt = stmt.on_conflict_do_update(
            index_elements=["version_id", "image_id", "tag"],
            set_={c: getattr(stmt.excluded, c) for c in ("deleted", "seq", "updated_by", "updated_at")},
        )
        conn = s.connection()  # Core executemany: the ORM's bulk path costs ~10 µs a row more
        for part in _chunks(rows):
            conn.execute(stmt, part)
    return changed


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


def rows_since(conn: Connection | Session, version_id: int, after: int) -> tuple[list[TagRow], list[MetaRow]]:
    """Every curation row (tombstones included) written after sequence `after`: the cache's refresh."""
    tags = conn.execute(select(ImageTag.image_id, ImageTag.tag, ImageTag.deleted).where(
        ImageTag.version_id == version_id, ImageTag.seq > after)).all()
    meta = conn.execute(select(ImageMeta.image_id, ImageMeta.key, ImageMeta.value_type, ImageMeta.value_str,
                               ImageMeta.value_num, ImageMeta.value_bool, ImageMeta.deleted).where(
        ImageMeta.version_id == version_id, ImageMeta.seq > after)).all()
    return [tuple(r) for r in tags], [tuple(r) for r in meta]  # type: ignore[misc]
