"""What one edit asks for, as data: the four edit kinds, the >1,000 images rule and the undo plan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from sqlalchemy.orm import Session

from dsgen_core.curation import idset, store
from dsgen_core.curation.store import ChangeSet, TagChange
from dsgen_core.curation.values import MetaValue, Typed, check_key, check_tag, typed
from dsgen_core.errors import InvalidRequest

if TYPE_CHECKING:
    from dsgen_core.search.engine import VersionEngine

CONFIRM_ABOVE = 1000
Op = Literal["add_tag", "remove_tag", "set_key", "delete_key"]


class ConfirmationRequired(InvalidRequest):
    """A bulk edit over more than CONFIRM_ABOVE images was asked for without confirm=True."""

    def __init__(self, count: int, what: str) -> None:
        self.count = count
        super().__init__(f"{what} would change {count:,} images (more than {CONFIRM_ABOVE:,}); "
                         "check the selection and repeat with confirm=True")


@dataclass(frozen=True)
class BulkEdit:
    """One change applied to many images: add_tag / remove_tag (tag), set_key (key, value), delete_key (key)."""

    op: Op
    tag: str | None = None
    key: str | None = None
    value: MetaValue | None = None

    @classmethod
    def add_tag(cls, tag: str) -> BulkEdit:
        return cls("add_tag", tag=tag)

    @classmethod
    def remove_tag(cls, tag: str) -> BulkEdit:
        return cls("remove_tag", tag=tag)

    @classmethod
    def set_key(cls, key: str, value: MetaValue) -> BulkEdit:
        return cls("set_key", key=key, value=value)

    @classmethod
    def delete_key(cls, key: str) -> BulkEdit:
        return cls("delete_key", key=key)

    def checked(self) -> BulkEdit:
        if self.op in ("add_tag", "remove_tag"):
            return BulkEdit(self.op, tag=check_tag(self.tag))
        if self.op == "set_key":
            typed(self.value, f"metadata.{self.key}")
            return BulkEdit(self.op, key=check_key(self.key), value=self.value)
        if self.op == "delete_key":
            return BulkEdit(self.op, key=check_key(self.key))
        raise InvalidRequest(f"bulk edit {self.op!r}: expected add_tag, remove_tag, set_key or delete_key")

    def describe(self) -> dict[str, Any]:
        return {k: v for k, v in (("op", self.op), ("tag", self.tag), ("key", self.key), ("value", self.value))
                if v is not None}

    def wanted(self, image_ids: list[int] | np.ndarray) -> tuple[list[TagChange], dict[tuple[int, str], Typed | None]]:
        """The tag change and the (image, key) → value map this edit asks for."""
        if self.op in ("add_tag", "remove_tag"):
            return [TagChange(self.tag, self.op == "add_tag", idset.as_ids(image_ids))], {}  # type: ignore[arg-type]
        value = typed(self.value) if self.op == "set_key" else None
        return [], {(int(i), self.key): value for i in image_ids}  # type: ignore[misc]


def undo_payload(changes: ChangeSet) -> dict[str, Any]:
    """What undo needs: the tag ops an edit wrote (their rows hold the ids it flipped) and each
    metadata row's value before and after it."""
    meta = [[*b, *row[2:6]] if not row[6] else [*b, None, None, None, None]
            for b, row in zip(changes.before, changes.meta, strict=True)]
    return {"tag_ops": [[c.tag, c.present, c.op_id] for c in changes.tags], "meta": meta}


def undo_plan(s: Session, engine: VersionEngine, version_id: int, payload: dict[str, Any]
              ) -> tuple[list[TagChange], dict[tuple[int, str], Typed | None]]:
    """Revert an edit for the rows that are still as it left them; rows somebody changed since keep
    their newer state (the caller counts them as skipped). `engine` must be synced to the catalog."""
    tags = []
    for tag, present_after, ids in _tag_entries(s, payload):
        holders = engine.tag_holders(tag, ids)
        still = holders if present_after else np.setdiff1d(ids, holders, assume_unique=True)
        if len(still):
            tags.append(TagChange(tag, not present_after, still))
    meta: dict[tuple[int, str], Typed | None] = {}
    rows = payload.get("meta", [])
    by_key: dict[str, list[list[Any]]] = {}
    for row in rows:
        by_key.setdefault(row[1], []).append(row)
    for key, key_rows in by_key.items():
        current = store.active_meta(s, version_id, key, [r[0] for r in key_rows])
        for i, _, btype, bs, bn, bb, atype, as_, an, ab in key_rows:
            after = Typed(atype, as_, an, ab) if atype is not None else None
            if current.get(i) == after:
                meta[(i, key)] = Typed(btype, bs, bn, bb) if btype is not None else None
    return tags, meta


def _tag_entries(s: Session, payload: dict[str, Any]) -> list[tuple[str, bool, np.ndarray]]:
    """(tag, present after the edit, ids it flipped); actions recorded before tag ops listed the ids inline."""
    ops = payload.get("tag_ops", [])
    by_op = store.op_image_ids(s, [int(op_id) for _, _, op_id in ops])
    out = [(tag, bool(present), by_op.get(int(op_id), np.empty(0, np.int64))) for tag, present, op_id in ops]
    out += [(tag, not deleted, idset.as_ids(ids)) for tag, deleted, ids in payload.get("tags", [])]
    return out
