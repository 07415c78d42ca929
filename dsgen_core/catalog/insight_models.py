"""Catalog rows of issue 5: saved insight views, saved SQL queries and the insight result cache.

Imported by `catalog.models` (like the curation tables) so that they live on the same `Base`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from dsgen_core.catalog.models import Base, JSONType, utcnow


class InsightView(Base):
    """A named dashboard: subsets (version + DSL query each), the charts shown and their settings."""

    __tablename__ = "insight_views"
    __table_args__ = (Index("ix_insight_views_owner", "owner_id"), Index("ix_insight_views_version", "version_id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id"))  # the primary version
    subsets: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)  # [{"version_id", "query", "label"}]
    charts: Mapped[list[str]] = mapped_column(JSONType)  # insight names, in dashboard order
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)  # listed for others who may read the versions
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SavedQuery(Base):
    """A user's saved ad-hoc SQL; private to its owner."""

    __tablename__ = "saved_queries"
    __table_args__ = (UniqueConstraint("owner_id", "name", name="uq_saved_query_owner_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    sql: Mapped[str] = mapped_column(Text)
    version_ids: Mapped[list[int]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class InsightResult(Base):
    """A computed insight (Arrow IPC bytes) keyed by version, curation state, query, insight and settings,
    so that the worker's precompute serves the web process."""

    __tablename__ = "insight_results"
    __table_args__ = (UniqueConstraint("version_id", "cache_key", name="uq_insight_result_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id"))
    cache_key: Mapped[str] = mapped_column(String(64))  # sha256 of (seq or -1, query, insight, settings)
    insight: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(Integer)  # -1: does not depend on the curation rows
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
