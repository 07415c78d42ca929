"""Facade methods for Explore: search, facets, tag/metadata edits, bulk edits with undo, CSV.

A mixin of `dsgen_core.api.Dsgen`; every method takes the acting user first and checks rights
before it reads or writes anything. Edits go to the catalog (the source of truth) and, after the
commit, straight into this process's search engine of the version (write-through).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import bindparam, exists, select
from sqlalchemy.orm import Session

from dsgen_core import permissions
from dsgen_core.catalog.curation_models import CurationAction, CurationSeq, ImageMeta
from dsgen_core.catalog.models import AuditEntry, DatasetGroup, DatasetVersion, GroupGrant, Membership, utcnow
from dsgen_core.curation import csv_io, idset, store
from dsgen_core.curation.edits import CONFIRM_ABOVE, BulkEdit, ConfirmationRequired, undo_payload, undo_plan
from dsgen_core.curation.store import ChangeSet, TagChange
from dsgen_core.curation.values import MetaValue, Typed, check_key, check_tag, typed
from dsgen_core.errors import InvalidRequest, NotFound
from dsgen_core.search import cache, service
from dsgen_core.search.engine import VersionEngine
from dsgen_core.search.service import Facets, SearchPage

if TYPE_CHECKING:
    from dsgen_core.app import App
    from dsgen_core.users import Actor

MAX_IDS_IN_AUDIT = 50
_V, _G = DatasetVersion.__table__, DatasetGroup.__table__
_ACCESS = select(  # the version, the actor's access facts on its group, its curation sequence
    _V.c.id, _V.c.status, _V.c.lake_path, _V.c.split, _G.c.id.label("group_id"), _G.c.name.label("group_name"),
    _G.c.owner_id, _G.c.visibility,
    select(CurationSeq.seq).where(CurationSeq.version_id == _V.c.id).scalar_subquery().label("seq"),
    select(GroupGrant.role).where(GroupGrant.group_id == _G.c.id, GroupGrant.user_id == bindparam("uid"))
    .scalar_subquery().label("grant"),
    exists().where(Membership.org_id == _G.c.org_id, Membership.user_id == bindparam("uid")).label("member"),
).join_from(_V, _G, _V.c.group_id == _G.c.id).where(
    _V.c.id == bindparam("vid"), _V.c.deleted_at.is_(None), _G.c.deleted_at.is_(None))
Build = Callable[[Session, int, VersionEngine], ChangeSet]


@dataclass
class ImageCuration:
    image_id: int
    tags: list[str]
    metadata: dict[str, MetaValue]
    seq: int


@dataclass
class EditResult:
    """What an edit did: `changed` rows (tag or key rows whose state changed) over `images` targeted."""

    action_id: int | None  # None when nothing changed (nothing to undo)
    seq: int
    images: int
    changed: int


@dataclass
class UndoResult:
    action_id: int
    kind: str
    seq: int
    restored: int
    skipped: int  # rows someone changed after the action: left as they are
    details: dict[str, Any] = field(default_factory=dict)


class CurationFacade:
    """Mixin for Dsgen: needs `self.app`, `self._load_version(s, id)`."""

    app: App
    _load_version: Callable[[Session, int], DatasetVersion]

    # ----- access ---------------------------------------------------------------------------
    def _engine(self, actor: Actor, version_id: int, edit: bool = False) -> VersionEngine:
        """Check rights, then return the version's search engine synced to the catalog's sequence.

        One catalog query reads the version, its group's access facts and the sequence: every search pays it."""
        permissions.require_login(actor)
        with self.app.catalog.engine.connect() as conn:
            row = conn.execute(_ACCESS, {"vid": int(version_id), "uid": actor.id}).first()
        if row is None:
            raise NotFound(f"dataset version {version_id} not found")
        role = permissions.effective_role(actor, row.owner_id, row.visibility, row.grant, bool(row.member))
        try:
            permissions.check_role(actor, role, "editor" if edit else "viewer", row.group_id, row.group_name)
        except NotFound:
            raise NotFound(f"dataset version {version_id} not found") from None
        if row.status != "READY":
            raise InvalidRequest(f"version {version_id} is {row.status}, not READY")
        engine = cache.engine_for(self.app, row.id, self.app.settings.lake_root / row.lake_path, row.split)
        engine.sync(int(row.seq or 0), lambda after: self._rows_since(row.id, after))
        return engine

    def _rows_since(self, version_id: int, after: int) -> tuple[list, list]:
        with self.app.catalog.engine.connect() as conn:
            return store.rows_since(conn, version_id, after)

    def _commit(self, actor: Actor, version_id: int, kind: str, params: dict[str, Any],
                build: Build, engine: VersionEngine) -> tuple[ChangeSet, int | None]:
        """One edit transaction: take the sequence number first (it orders and serializes the version's
        edits), re-check the right to edit, write rows, record the undoable action and the audit entry."""
        with self.app.catalog.session() as s:
            seq = self._locked_seq(s, actor, version_id, engine)
            changes = build(s, seq, engine)
            action_id = None
            if changes.count:
                action = CurationAction(version_id=version_id, user_id=actor.id, seq=seq, kind=kind,
                                        params=params, count=changes.count, before=undo_payload(changes))
                s.add(action)
                s.flush()
                action_id = action.id
            s.add(AuditEntry(user_id=actor.id, action=f"curation.{kind}", target_type="version",
                             target_id=version_id,
                             details={**params, "rows_changed": changes.count, "images_changed": changes.images,
                                      "seq": seq, "action_id": action_id}))
        engine.apply(changes)
        return changes, action_id

    def _locked_seq(self, s: Session, actor: Actor, version_id: int, engine: VersionEngine) -> int:
        """Take the version's next sequence number (its row lock serializes edits until commit), re-check
        the right to edit, and bring the engine to every edit before ours: tag changes are computed on it."""
        seq = store.bump(s, version_id)
        permissions.require_edit(actor, self._load_version(s, version_id).group)
        engine.sync(seq - 1, lambda after: store.rows_since(s, version_id, after))
        return seq

    @staticmethod
    def _edit(version_id: int, actor: Actor, tags: list[TagChange],
              meta: dict[tuple[int, str], Typed | None]) -> Build:
        def build(s: Session, seq: int, engine: VersionEngine) -> ChangeSet:
            cs = ChangeSet(version_id, seq)
            for want in tags:  # one per tag; only the ids whose state changes are written
                holders = engine.tag_holders(want.tag, want.ids)
                changed = np.setdiff1d(want.ids, holders, assume_unique=True) if want.present else holders
                if len(changed):
                    cs.tags.append(store.write_tag_op(s, version_id, seq, actor.id,
                                                      TagChange(want.tag, want.present, changed)))
            if meta:
                cs.meta, cs.before = store.write_meta(s, version_id, seq, actor.id, meta)
            return cs
        return build

    def _check_ids(self, engine: VersionEngine, version_id: int, image_ids: Iterable[int]) -> np.ndarray:
        """Sorted unique ids, all of them images of the version."""
        try:
            ids = idset.as_ids(image_ids if isinstance(image_ids, np.ndarray) else list(image_ids))
        except (TypeError, ValueError, OverflowError):
            raise InvalidRequest("image ids must be integers") from None
        missing = engine.unknown_ids(ids)
        if len(missing):
            shown = ", ".join(map(str, missing[:10].tolist())) + (" …" if len(missing) > 10 else "")
            raise InvalidRequest(f"{len(missing)} image ids are not in version {version_id}: {shown}")
        return ids

    # ----- reading --------------------------------------------------------------------------
    def curation_seq(self, actor: Actor, version_id: int) -> int:
        """The version's curation sequence: a cache key for anything derived from tags/metadata."""
        with self.app.catalog.session() as s:
            permissions.require_read(actor, self._load_version(s, version_id).group)
            return store.current_seq(s, version_id)

    def search_images(self, actor: Actor, version_id: int, query: str = "", order_by: str = "file_name",
                      descending: bool = False, limit: int = 100, offset: int = 0) -> SearchPage:
        """Count and one page of image ids for a DSL query; order_by: file_name, width, height, boxes,
        image_id or metadata.<key>."""
        return service.search_page(self._engine(actor, version_id), query, order_by, descending, limit, offset)

    def search_facets(self, actor: Actor, version_id: int, query: str = "", top: int = 10) -> Facets:
        """Categories, tags and metadata keys with their top values, counted over the query's result."""
        return service.facets(self._engine(actor, version_id), query, top)

    def metadata_keys(self, actor: Actor, version_id: int) -> list[str]:
        return list(self._engine(actor, version_id).metadata_keys)

    def image_curation(self, actor: Actor, version_id: int, image_id: int) -> ImageCuration:
        engine = self._engine(actor, version_id)
        self._check_ids(engine, version_id, [image_id])
        tags = [r[0] for r in engine.fetchall("SELECT tag FROM tags WHERE image_id = $i ORDER BY tag",
                                              {"i": int(image_id)})]
        with self.app.catalog.session() as s:
            meta = s.execute(select(ImageMeta.key, ImageMeta.value_type, ImageMeta.value_str, ImageMeta.value_num,
                                    ImageMeta.value_bool).where(
                ImageMeta.version_id == version_id, ImageMeta.image_id == image_id, ImageMeta.deleted.is_(False)
            ).order_by(ImageMeta.key)).all()
            seq = store.current_seq(s, version_id)
        return ImageCuration(int(image_id), list(tags), {k: Typed(t, vs, vn, vb).value for k, t, vs, vn, vb in meta},
                             seq)

    # ----- one image ------------------------------------------------------------------------
    def add_tags(self, actor: Actor, version_id: int, image_id: int, tags: str | Iterable[str]) -> EditResult:
        return self._edit_one(actor, version_id, image_id, "tag.add", tags=dict.fromkeys(_names(tags, check_tag), True))

    def remove_tags(self, actor: Actor, version_id: int, image_id: int, tags: str | Iterable[str]) -> EditResult:
        return self._edit_one(actor, version_id, image_id, "tag.remove",
                              tags=dict.fromkeys(_names(tags, check_tag), False))

    def set_metadata(self, actor: Actor, version_id: int, image_id: int, values: dict[str, MetaValue]) -> EditResult:
        """Set typed values (str, int/float, bool) by key; use delete_metadata to remove a key."""
        meta = {check_key(k): typed(v, f"metadata.{k}") for k, v in values.items()}
        return self._edit_one(actor, version_id, image_id, "meta.set", meta=meta)

    def delete_metadata(self, actor: Actor, version_id: int, image_id: int, keys: str | Iterable[str]) -> EditResult:
        return self._edit_one(actor, version_id, image_id, "meta.delete",
                              meta=dict.fromkeys(_names(keys, check_key)))

    def _edit_one(self, actor: Actor, version_id: int, image_id: int, kind: str,
                  tags: dict[str, bool] | None = None, meta: dict[str, Typed | None] | None = None) -> EditResult:
        engine = self._engine(actor, version_id, edit=True)
        iid = int(self._check_ids(engine, version_id, [image_id])[0])
        params = {"image_id": iid, "tags": sorted(tags or {}),
                  "metadata": {k: (v.value if v else None) for k, v in (meta or {}).items()}}
        changes, action_id = self._commit(
            actor, version_id, kind, params,
            self._edit(version_id, actor, [TagChange(t, p, np.array([iid], np.int64)) for t, p in (tags or {}).items()],
                       {(iid, k): v for k, v in (meta or {}).items()}), engine)
        return EditResult(action_id, changes.seq, 1, changes.count)

    # ----- many images ----------------------------------------------------------------------
    def bulk_edit(self, actor: Actor, version_id: int, edit: BulkEdit, *, image_ids: Iterable[int] | None = None,
                  query: str | None = None, confirm: bool = False) -> EditResult:
        """Apply one edit to the given image ids or to every image matching a DSL query.

        More than 1,000 images needs confirm=True (ConfirmationRequired, an InvalidRequest, says how many)."""
        edit = edit.checked()
        if (image_ids is None) == (query is None):
            raise InvalidRequest("bulk edit: give either image_ids or a query")
        engine = self._engine(actor, version_id, edit=True)
        ids = service.matching_id_array(engine, query) if query is not None else self._check_ids(
            engine, version_id, image_ids or [])
        if len(ids) > CONFIRM_ABOVE and not confirm:
            raise ConfirmationRequired(len(ids), f"bulk {edit.op.replace('_', ' ')}")
        params = {**edit.describe(), "bulk": True, "targets": len(ids), "query": query,
                  "image_ids": ids[:MAX_IDS_IN_AUDIT].tolist()}
        tags, meta = edit.wanted(ids)
        changes, action_id = self._commit(actor, version_id, f"bulk.{edit.op}", params,
                                          self._edit(version_id, actor, tags, meta), engine)
        return EditResult(action_id, changes.seq, len(ids), changes.count)

    def undo_last(self, actor: Actor, version_id: int) -> UndoResult:
        """Undo this user's newest not yet undone edit of the version (repeat to go further back).

        Rows somebody changed after that edit keep the newer state and are counted as skipped."""
        engine = self._engine(actor, version_id, edit=True)
        with self.app.catalog.session() as s:
            seq = self._locked_seq(s, actor, version_id, engine)
            action = s.scalars(select(CurationAction).where(
                CurationAction.version_id == version_id, CurationAction.user_id == actor.id,
                CurationAction.undone_at.is_(None)).order_by(CurationAction.id.desc()).limit(1)).first()
            if action is None:
                raise NotFound(f"nothing of yours to undo in version {version_id}")
            tags, meta = undo_plan(s, engine, version_id, action.before or {})
            changes = self._edit(version_id, actor, tags, meta)(s, seq, engine)
            action.undone_at, action.undo_seq = utcnow(), seq
            result = UndoResult(action.id, action.kind, seq, changes.count, action.count - changes.count,
                                dict(action.params or {}))
            s.add(AuditEntry(user_id=actor.id, action="curation.undo", target_type="version", target_id=version_id,
                             details={"action_id": action.id, "kind": action.kind, "restored": result.restored,
                                      "skipped": result.skipped, "seq": seq}))
        engine.apply(changes)
        return result

    # ----- CSV ------------------------------------------------------------------------------
    def import_metadata_csv(self, actor: Actor, version_id: int, source: str | Path | bytes) -> csv_io.CsvImportReport:
        """Import a long (file_name,key,value[,kind]) or wide (file_name,<key>,…) CSV; one undoable edit.

        Rows whose file matches no image are reported, not fatal; bad keys or values change nothing."""
        engine = self._engine(actor, version_id, edit=True)
        layout, entries, rows = csv_io.read_entries(csv_io.read_source(source))
        report = csv_io.CsvImportReport(layout=layout, rows=rows)
        exact, base = csv_io.match_files(engine.fetchall("SELECT image_id, file_name FROM images"))
        tags: dict[str, set[int]] = {}
        meta: dict[tuple[int, str], Typed | None] = {}
        matched_lines: set[int] = set()
        bad_lines: set[int] = set()
        for entry, value in csv_io.typed_values(entries, report):
            iid = exact.get(entry.file_name)
            if iid is None and entry.file_name in base:
                iid = base[entry.file_name]
                if iid is None:
                    if entry.line not in bad_lines:
                        report.ambiguous.append((entry.line, entry.file_name))
                        bad_lines.add(entry.line)
                    continue
            if iid is None:
                if entry.line not in bad_lines:
                    report.unmatched.append((entry.line, entry.file_name))
                    bad_lines.add(entry.line)
                continue
            matched_lines.add(entry.line)
            if value is None:
                tags.setdefault(entry.key, set()).add(iid)
            else:
                meta[(iid, entry.key)] = value
        report.matched_rows = len(matched_lines)
        report.images = len(set().union(*tags.values()) | {k[0] for k in meta})
        params = {"layout": layout, "rows": rows, "matched_rows": report.matched_rows,
                  "unmatched_rows": len(report.unmatched), "keys": sorted(report.key_types)}
        wants = [TagChange(tag, True, idset.as_ids(ids)) for tag, ids in sorted(tags.items())]
        changes, action_id = self._commit(actor, version_id, "csv.import", params,
                                          self._edit(version_id, actor, wants, meta), engine)
        report.values_changed, report.tags_changed = len(changes.meta), sum(len(t.ids) for t in changes.tags)
        report.action_id, report.seq = action_id, changes.seq
        return report

    def export_curation_csv(self, actor: Actor, version_id: int, out_path: str | Path) -> Path:
        """Write every tag and metadata value of the version as a long CSV that import reads back."""
        engine = self._engine(actor, version_id)
        rows = engine.fetchall(
            "SELECT i.image_id, i.file_name, 'tag', t.tag, '' FROM tags t JOIN images i USING (image_id) "
            "UNION ALL SELECT i.image_id, i.file_name, m.value_type, m.key, "
            "CASE m.value_type WHEN 'boolean' THEN CAST(m.value_bool AS VARCHAR) ELSE coalesce(m.value_str, '') END "
            "FROM metadata m JOIN images i USING (image_id) ORDER BY 2, 1, 3 DESC, 4")
        meta_num = {(r[0], r[1]): r[2] for r in engine.fetchall(
            "SELECT image_id, key, value_num FROM metadata WHERE value_type = 'number'")}
        out = []
        for image_id, file_name, kind, key, value in rows:
            if kind == "number":
                value = Typed("number", num=meta_num[(image_id, key)]).text()
            out.append((image_id, file_name, kind, key, value))
        path = Path(out_path)
        n = csv_io.write_long(path, out)
        with self.app.catalog.session() as s:
            s.add(AuditEntry(user_id=actor.id, action="curation.csv.export", target_type="version",
                             target_id=version_id, details={"path": str(path), "rows": n, "seq": engine.seq,
                                                            "at": datetime.now().isoformat(timespec="seconds")}))
        return path


def _names(values: str | Iterable[str], check: Callable[[object], str]) -> list[str]:
    items = [values] if isinstance(values, str) else list(values)
    if not items:
        raise InvalidRequest("give at least one name")
    return [check(v) for v in items]
