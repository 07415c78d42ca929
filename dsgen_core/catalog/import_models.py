"""Catalog rows of server-side import roots: the folders of this machine that users may import from.

A site admin configures them; each is open to every logged-in user, or only to the organizations and
users listed (ids in JSON lists, so one row holds one root's whole rule).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from dsgen_core.catalog.models import Base, JSONType, utcnow


class ImportRoot(Base):
    """One server folder users may import from (and register in place, and use as a CVAT share)."""

    __tablename__ = "import_roots"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String(1000), unique=True)  # absolute, resolved when added
    org_ids: Mapped[list[int]] = mapped_column(JSONType, default=list)  # empty and user_ids empty: everyone
    user_ids: Mapped[list[int]] = mapped_column(JSONType, default=list)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
