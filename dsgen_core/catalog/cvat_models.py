"""Catalog rows of the CVAT round trip: per-user connections, export records with their tasks, pull-backs.

Secrets live only in `CvatConnection.secret`; no facade call returns that column and jobs carry the
connection id, never the secret, so it stays out of the UI, job params, logs and the audit log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dsgen_core.catalog.models import Base, JSONType, utcnow


class CvatConnection(Base):
    """A CVAT server and one user's credentials for it; visible to its owner only."""

    __tablename__ = "cvat_connections"
    __table_args__ = (UniqueConstraint("owner_id", "name", name="uq_cvat_connection_owner_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(500))
    org: Mapped[str | None] = mapped_column(String(100))
    auth_kind: Mapped[str] = mapped_column(String(8))  # login | basic | token | pat
    username: Mapped[str] = mapped_column(String(200), default="")
    secret: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # The folder of this machine that CVAT sees as its share root (or, with cloud_storage_id, as the root of
    # that cloud storage): exports of images stored under it may send file references instead of bytes.
    share_root: Mapped[str | None] = mapped_column(String(1000))
    cloud_storage_id: Mapped[int | None] = mapped_column(Integer)


class CvatExport(Base):
    """One export of a filter snapshot (version + DSL + curation sequence) to CVAT, with its settings."""

    __tablename__ = "cvat_exports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id"), index=True)
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("cvat_connections.id"))
    server_url: Mapped[str] = mapped_column(String(500))
    query: Mapped[str] = mapped_column(Text, default="")
    curation_seq: Mapped[int] = mapped_column(Integer, default=0)
    num_images: Mapped[int] = mapped_column(Integer, default=0)
    project_name: Mapped[str] = mapped_column(String(200))
    project_id: Mapped[int | None] = mapped_column(Integer)
    task_name: Mapped[str] = mapped_column(String(200))
    max_images_per_task: Mapped[int] = mapped_column(Integer)
    segment_size: Mapped[int] = mapped_column(Integer)
    image_quality: Mapped[int] = mapped_column(Integer)
    preload_annotations: Mapped[bool] = mapped_column(Boolean, default=True)
    send_references: Mapped[bool] = mapped_column(Boolean, default=False)  # server_files, not bytes
    # images with an EXIF orientation: "rotate" (upright pixels, shapes turned with them and back on pull),
    # "as-is" (nothing turned), None (the subset had none)
    exif_remedy: Mapped[str | None] = mapped_column(String(8))
    labels: Mapped[list[str] | None] = mapped_column(JSONType)  # project label names in CVAT's order
    status: Mapped[str] = mapped_column(String(16), default="QUEUED")  # QUEUED|RUNNING|DONE|FAILED|CANCELLED
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class CvatExportTask(Base):
    """One CVAT task of an export; `task_id` is written right after CVAT creates it, so retries resume it."""

    __tablename__ = "cvat_export_tasks"
    __table_args__ = (
        UniqueConstraint("export_id", "part", name="uq_cvat_export_task_part"),
        Index("ix_cvat_export_tasks_task", "task_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    export_id: Mapped[int] = mapped_column(ForeignKey("cvat_exports.id"), index=True)
    part: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    task_id: Mapped[int | None] = mapped_column(Integer)
    url: Mapped[str | None] = mapped_column(String(600))
    state: Mapped[str] = mapped_column(String(16), default="planned")  # planned|created|uploading|data|done
    rq_id: Mapped[str | None] = mapped_column(String(300))
    image_ids: Mapped[list[int]] = mapped_column(JSONType)
    frame_names: Mapped[list[str]] = mapped_column(JSONType)  # frame i = image_ids[i], CVAT file name
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class CvatPull(Base):
    """A pull-back: previewed (annotations downloaded, diff stored), then committed as a new version."""

    __tablename__ = "cvat_pulls"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    export_id: Mapped[int] = mapped_column(ForeignKey("cvat_exports.id"), index=True)
    task_ids: Mapped[list[int]] = mapped_column(JSONType)
    group_id: Mapped[int] = mapped_column(ForeignKey("dataset_groups.id"))
    source_version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id"))
    new_version_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id"))
    status: Mapped[str] = mapped_column(String(16), default="PREVIEWED")  # PREVIEWED|COMMITTING|COMMITTED|FAILED
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
