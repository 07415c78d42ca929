"""Curation rows: per-image tags and typed key/value metadata that users edit all day.

Tags are a log of set operations (one row per edit and tag, its image ids in one blob); metadata is one
row per (version, image, key). Either way concurrent editors never overwrite each other: edits of a
version are serialized by its sequence row and stamped with their number, and removing a metadata key
keeps its row as a tombstone, so readers that cache the state refresh incrementally from `seq`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from dsgen_core.catalog.models import Base, JSONType, utcnow


class CurationSeq(Base):
    """The per-version edit counter: every curation transaction bumps it (and holds its row lock)."""

    __tablename__ = "curation_seqs"
    version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)


class TagOp(Base):
    """One tag edit of many images: `tag` made present (or absent) on the images in `image_ids` (a blob of
    `curation.idset`) whose state it changed. A version's tags are its ops folded in `seq` order, so a bulk
    edit writes one row, and readers catch up from a sequence number by reading the ops after it."""

    __tablename__ = "curation_tag_ops"
    __table_args__ = (Index("ix_curation_tag_ops_version_seq", "version_id", "seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    tag: Mapped[str] = mapped_column(String(200))
    present: Mapped[bool] = mapped_column(Boolean)
    count: Mapped[int] = mapped_column(Integer)
    image_ids: Mapped[bytes] = mapped_column(LargeBinary)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ImageMeta(Base):
    """One metadata value; exactly one of value_str / value_num / value_bool is set, per value_type."""

    __tablename__ = "image_metadata"
    __table_args__ = (
        Index("ix_image_metadata_version_seq", "version_id", "seq"),
        Index("ix_image_metadata_version_key", "version_id", "key"),
    )
    version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id"), primary_key=True)
    image_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value_type: Mapped[str] = mapped_column(String(8))  # string | number | boolean
    value_str: Mapped[str | None] = mapped_column(Text)
    value_num: Mapped[float | None] = mapped_column(Double)
    value_bool: Mapped[bool | None] = mapped_column(Boolean)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CurationAction(Base):
    """One edit transaction, kept so its author can undo it: `before` holds the tag rows it flipped
    and each metadata row's value before and after."""

    __tablename__ = "curation_actions"
    __table_args__ = (Index("ix_curation_actions_version_user", "version_id", "user_id", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    count: Mapped[int] = mapped_column(Integer, default=0)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONType)  # see curation.edits.undo_payload
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(DateTime)
    undo_seq: Mapped[int | None] = mapped_column(BigInteger)
