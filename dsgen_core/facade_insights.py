"""Facade methods of issue 5: insights (single and side by side), saved views, ad-hoc SQL, CSV reports.

A mixin of `dsgen_core.api.Dsgen` (needs `app`, `_load_version` and CurationFacade's `_engine`); every
method takes the acting user first and checks the right to read each version it touches.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from dsgen_core import permissions
from dsgen_core.catalog.curation_models import ImageMeta
from dsgen_core.catalog.insight_models import InsightView, SavedQuery
from dsgen_core.catalog.models import AuditEntry, DatasetGroup, DatasetVersion, User, utcnow
from dsgen_core.curation import store
from dsgen_core.errors import InvalidRequest, NotFound
from dsgen_core.insights.job import PRECOMPUTE
from dsgen_core.jobs import queue
from dsgen_core.lazy import LazyModule

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from dsgen_core.app import App
    from dsgen_core.catalog.models import DatasetVersion as Version
    from dsgen_core.insights.registry import InsightSettings, Subset
    from dsgen_core.insights.service import InsightResult
    from dsgen_core.insights.views import ViewInfo
    from dsgen_core.search.engine import VersionEngine
    from dsgen_core.sql_sandbox import Sandbox, SqlResult
    from dsgen_core.users import Actor

# Heavy (polars/pyarrow) modules load on first use, so importing the facade stays cheap.
pl = LazyModule("polars")
pa = LazyModule("pyarrow")
pacsv = LazyModule("pyarrow.csv")
pq = LazyModule("pyarrow.parquet")
filters = LazyModule("dsgen_core.insights.filters")
views = LazyModule("dsgen_core.insights.views")
_registry = LazyModule("dsgen_core.insights.registry")
_service = LazyModule("dsgen_core.insights.service")
_sandbox = LazyModule("dsgen_core.sql_sandbox.sandbox")

MAX_SQL_VERSIONS = 6
SQL_ROW_LIMIT, SQL_MAX_ROWS = 10_000, 1_000_000
SQL_TIMEOUT, SQL_MAX_TIMEOUT = 10.0, 120.0


def frame_csv(frame: pl.DataFrame | pa.Table) -> bytes:
    """CSV bytes with a header of the table's own (stable) column names; lists are written as JSON."""
    table = frame.to_arrow() if isinstance(frame, pl.DataFrame) else frame
    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    nested = [c for c, t in df.schema.items() if isinstance(t, pl.List | pl.Struct | pl.Array)]
    if nested:
        df = df.with_columns([pl.col(c).map_elements(_json, return_dtype=pl.String) for c in nested])
    sink = io.BytesIO()
    pacsv.write_csv(df.to_arrow(), sink)
    return sink.getvalue()


def _json(value: Any) -> str:
    import json

    return json.dumps(value.to_list() if hasattr(value, "to_list") else value)


class InsightsFacade:
    """Mixin for Dsgen."""

    app: App
    _load_version: Callable[..., Version]
    _engine: Callable[..., VersionEngine]

    # ----- insights -------------------------------------------------------------------------
    @staticmethod
    def insight_kinds() -> dict[str, str]:
        """Insight name → title, in display order."""
        return {k: v.title for k, v in _registry.INSIGHTS.items()}

    def insight(self, actor: Actor, version_id: int, name: str, query: str = "",
                settings: InsightSettings | dict[str, Any] | None = None) -> InsightResult:
        """One insight of the images of a version matching a DSL query."""
        return self.compare_insight(actor, [_registry.Subset(int(version_id), query)], name, settings)

    def compare_insight(self, actor: Actor, subsets: list[Subset], name: str,
                        settings: InsightSettings | dict[str, Any] | None = None) -> InsightResult:
        """The insight for each subset side by side (tables gain a leading `subset` column); subsets may
        be of different versions (version A vs B). Labels must differ."""
        subsets = views.check_subsets(subsets)
        labels = [s.name for s in subsets]
        if len(set(labels)) != len(labels):
            raise InvalidRequest(f"subset labels must differ: {labels}")
        conf = settings if isinstance(settings, _registry.InsightSettings) else _registry.InsightSettings.from_dict(settings)
        engines = [(s.name, self._engine(actor, s.version_id), s.query) for s in subsets]
        return _service.run_subsets(self.app, engines, name, conf)

    def insight_csv(self, actor: Actor, subsets: list[Subset], name: str, table: str,
                    settings: dict[str, Any] | None = None) -> bytes:
        result = self.compare_insight(actor, subsets, name, settings)
        if table not in result.tables:
            raise InvalidRequest(f"insight {name!r} has no table {table!r}; it has {', '.join(result.tables)}")
        return frame_csv(result.tables[table])

    @staticmethod
    def explore_link(version_id: int, query: str, insight: str, table: str, row: dict[str, Any]) -> str | None:
        """The Explore gallery address for a clicked row (None when the DSL cannot express the row)."""
        dsl = filters.dsl_for(query, insight, table, row)
        return filters.explore_url(version_id, dsl) if dsl is not None else None

    def precompute_insights(self, actor: Actor, version_id: int) -> int:
        """Queue the precompute job of the basic insights; returns the job id."""
        with self.app.catalog.session() as s:
            v = self._load_version(s, version_id, actor, "viewer")
            if v.status != "READY":
                raise InvalidRequest(f"version {version_id} is {v.status}, not READY")
        return queue.enqueue(self.app, PRECOMPUTE, {"version_id": int(version_id)}, actor.id, version_id=version_id)

    # ----- saved views ----------------------------------------------------------------------
    def _view_visible(self, s: Session, actor: Actor, v: InsightView) -> bool:
        """Owner, admin or shared — and, for everyone, the right to read every version it shows."""
        if not (actor.is_admin or v.owner_id == actor.id or v.shared):
            return False
        try:
            for vid in {v.version_id, *(int(x["version_id"]) for x in v.subsets)}:
                self._load_version(s, vid, actor, "viewer")
        except NotFound:
            return False
        return True

    def _load_view(self, s: Session, actor: Actor, view_id: int, edit: bool = False) -> InsightView:
        permissions.require_login(actor)
        v = s.get(InsightView, int(view_id))
        if v is None or not self._view_visible(s, actor, v):
            raise NotFound(f"insight view {view_id} not found")
        if edit and not (actor.is_admin or v.owner_id == actor.id):
            from dsgen_core.errors import PermissionDenied

            raise PermissionDenied(f"only the owner of insight view {view_id} may change it")
        return v

    def _view_info(self, s: Session, v: InsightView) -> ViewInfo:
        return views.to_info(v, s.get(User, v.owner_id).username)

    def create_view(self, actor: Actor, name: str, subsets: list[Subset], charts: list[str],
                    settings: dict[str, Any] | None = None, shared: bool = False) -> ViewInfo:
        """Save a view; every version it shows must be readable by its owner."""
        permissions.require_login(actor)
        name, subsets = views.check_name(name), views.check_subsets(subsets)
        charts, conf = views.check_charts(charts), views.check_settings(settings)
        with self.app.catalog.session() as s:
            for vid in {x.version_id for x in subsets}:
                self._load_version(s, vid, actor, "viewer")
            v = InsightView(name=name, owner_id=actor.id, version_id=subsets[0].version_id,
                            subsets=views.subsets_json(subsets), charts=charts, settings=conf, shared=bool(shared))
            s.add(v)
            s.flush()
            s.add(AuditEntry(user_id=actor.id, action="insight_view.create", target_type="insight_view",
                             target_id=v.id, details={"name": name}))
            return self._view_info(s, v)

    def list_views(self, actor: Actor, version_id: int | None = None) -> list[ViewInfo]:
        """Views the actor may open: their own and shared ones, of versions they may read."""
        permissions.require_login(actor)
        with self.app.catalog.session() as s:
            q = select(InsightView).order_by(InsightView.name, InsightView.id)
            if version_id is not None:
                q = q.where(InsightView.version_id == int(version_id))
            if not actor.is_admin:
                q = q.where((InsightView.owner_id == actor.id) | InsightView.shared.is_(True))
            return [self._view_info(s, v) for v in s.scalars(q) if self._view_visible(s, actor, v)]

    def get_view(self, actor: Actor, view_id: int) -> ViewInfo:
        with self.app.catalog.session() as s:
            return self._view_info(s, self._load_view(s, actor, view_id))

    def update_view(self, actor: Actor, view_id: int, *, name: str | None = None,
                    subsets: list[Subset] | None = None, charts: list[str] | None = None,
                    settings: dict[str, Any] | None = None, shared: bool | None = None) -> ViewInfo:
        """Change any part of a view (owner or admin); rename = update_view(name=...)."""
        with self.app.catalog.session() as s:
            v = self._load_view(s, actor, view_id, edit=True)
            if name is not None:
                v.name = views.check_name(name)
            if subsets is not None:
                checked = views.check_subsets(subsets)
                for vid in {x.version_id for x in checked}:
                    self._load_version(s, vid, actor, "viewer")
                v.subsets, v.version_id = views.subsets_json(checked), checked[0].version_id
            if charts is not None:
                v.charts = views.check_charts(charts)
            if settings is not None:
                v.settings = views.check_settings(settings)
            if shared is not None:
                v.shared = bool(shared)
            v.updated_at = utcnow()
            s.add(AuditEntry(user_id=actor.id, action="insight_view.update", target_type="insight_view",
                             target_id=v.id, details={"name": v.name, "shared": v.shared}))
            s.flush()
            return self._view_info(s, v)

    def rename_view(self, actor: Actor, view_id: int, name: str) -> ViewInfo:
        return self.update_view(actor, view_id, name=name)

    def share_view(self, actor: Actor, view_id: int, shared: bool = True) -> str:
        """List the view for everyone who may read its versions; returns its link."""
        return self.update_view(actor, view_id, shared=shared).link

    def delete_view(self, actor: Actor, view_id: int) -> None:
        with self.app.catalog.session() as s:
            v = self._load_view(s, actor, view_id, edit=True)
            s.add(AuditEntry(user_id=actor.id, action="insight_view.delete", target_type="insight_view",
                             target_id=v.id, details={"name": v.name}))
            s.delete(v)

    def view_insights(self, actor: Actor, view_id: int) -> list[InsightResult]:
        """Every chart of a view computed on its subsets: the dashboard's data."""
        info = self.get_view(actor, view_id)
        return [self.compare_insight(actor, info.subsets, name, info.settings) for name in info.charts]

    # ----- ad-hoc SQL -----------------------------------------------------------------------
    def _readable_versions(self, s: Session, actor: Actor) -> list[DatasetVersion]:
        permissions.require_login(actor)
        return list(s.scalars(
            select(DatasetVersion).join(DatasetGroup)
            .where(DatasetGroup.deleted_at.is_(None), DatasetVersion.deleted_at.is_(None),
                   permissions.readable_clause(actor))
            .order_by(DatasetVersion.id)))

    def sql_versions(self, actor: Actor) -> list[dict[str, Any]]:
        """The rows of the SQL page's `versions` table: every version the actor may read."""
        with self.app.catalog.session() as s:
            return [_version_row(v, False) for v in self._readable_versions(s, actor)]

    def run_sql(self, actor: Actor, sql: str, version_ids: list[int] | None = None,
                row_limit: int = SQL_ROW_LIMIT, timeout: float = SQL_TIMEOUT) -> SqlResult:
        """Run one read-only DuckDB query over images, annotations, categories, tags, metadata (rows of the
        chosen READY versions; default: all the actor may read, up to 6) and versions (all readable)."""
        if not 1 <= int(row_limit) <= SQL_MAX_ROWS:
            raise InvalidRequest(f"row limit {row_limit}: expected 1..{SQL_MAX_ROWS:,}")
        if not 0 < float(timeout) <= SQL_MAX_TIMEOUT:
            raise InvalidRequest(f"time limit {timeout}: expected 0..{SQL_MAX_TIMEOUT:g} s")
        from dsgen_core.sql_sandbox import check_statement

        check_statement(sql)  # refuse before loading anything
        with self.app.catalog.session() as s:
            readable = self._readable_versions(s, actor)
            by_id = {v.id: v for v in readable}
            ready = [v.id for v in readable if v.status == "READY"]
            if version_ids is None:
                if len(ready) > MAX_SQL_VERSIONS:
                    raise InvalidRequest(f"you may read {len(ready)} versions; choose up to {MAX_SQL_VERSIONS} "
                                         "(the versions table lists them)")
                chosen = ready
            else:
                chosen = sorted({int(v) for v in version_ids})
                for vid in chosen:
                    if vid not in by_id:
                        raise NotFound(f"dataset version {vid} not found")
                    if by_id[vid].status != "READY":
                        raise InvalidRequest(f"version {vid} is {by_id[vid].status}, not READY")
                if len(chosen) > MAX_SQL_VERSIONS:
                    raise InvalidRequest(f"choose up to {MAX_SQL_VERSIONS} versions, not {len(chosen)}")
            seqs = {vid: store.current_seq(s, vid) for vid in chosen}
            rows = [_version_row(v, v.id in seqs) for v in readable]
            folders = {vid: (self.app.settings.lake_root / by_id[vid].lake_path, by_id[vid].split) for vid in chosen}
        key = (self.app.catalog.url, tuple(sorted(seqs.items())), tuple((r["version_id"], r["status"]) for r in rows))
        box = self.app.sandboxes.get_or_build(key, lambda: self._build_sandbox(folders, rows))
        result = box.run(sql, row_limit=int(row_limit), timeout=float(timeout))
        with self.app.catalog.session() as s:
            s.add(AuditEntry(user_id=actor.id, action="sql.run", target_type="versions", target_id=None,
                             details={"sql": sql[:2000], "versions": chosen, "rows": result.table.num_rows}))
        return result

    def _build_sandbox(self, folders: dict[int, tuple[Path, str]], rows: list[dict[str, Any]]) -> Sandbox:
        sources = []
        with self.app.catalog.engine.connect() as conn:
            for vid, (folder, split) in folders.items():
                tags = [(int(i), tag) for tag, ids in store.tag_state(conn, vid).items() for i in ids]
                meta = conn.execute(select(ImageMeta.image_id, ImageMeta.key, ImageMeta.value_type,
                                           ImageMeta.value_str, ImageMeta.value_num, ImageMeta.value_bool).where(
                    ImageMeta.version_id == vid, ImageMeta.deleted.is_(False))).all()
                sources.append(_sandbox.VersionSource(vid, folder, split, [tuple(r) for r in tags], [tuple(r) for r in meta]))
        return _sandbox.Sandbox(sources, _sandbox.versions_table(rows))

    @staticmethod
    def sql_result_csv(result: SqlResult) -> bytes:
        return frame_csv(result.table)

    @staticmethod
    def sql_result_parquet(result: SqlResult) -> bytes:
        sink = io.BytesIO()
        pq.write_table(result.table, sink)
        return sink.getvalue()

    def save_query(self, actor: Actor, name: str, sql: str, version_ids: list[int] | None = None) -> int:
        """Save (or overwrite by name) one of the actor's own queries; returns its id."""
        from dsgen_core.sql_sandbox import check_statement

        permissions.require_login(actor)
        name = views.check_name(name)
        check_statement(sql)
        with self.app.catalog.session() as s:
            q = s.scalars(select(SavedQuery).where(SavedQuery.owner_id == actor.id, SavedQuery.name == name)).first()
            if q is None:
                q = SavedQuery(name=name, owner_id=actor.id, sql=sql, version_ids=list(version_ids or []))
                s.add(q)
            else:
                q.sql, q.version_ids = sql, list(version_ids or [])
            s.flush()
            return q.id

    def list_queries(self, actor: Actor) -> list[dict[str, Any]]:
        permissions.require_login(actor)
        with self.app.catalog.session() as s:
            return [{"id": q.id, "name": q.name, "sql": q.sql, "version_ids": list(q.version_ids or [])}
                    for q in s.scalars(select(SavedQuery).where(SavedQuery.owner_id == actor.id)
                                       .order_by(SavedQuery.name))]

    def delete_query(self, actor: Actor, query_id: int) -> None:
        permissions.require_login(actor)
        with self.app.catalog.session() as s:
            q = s.get(SavedQuery, int(query_id))
            if q is None or q.owner_id != actor.id:
                raise NotFound(f"saved query {query_id} not found")
            s.delete(q)

    # ----- reports --------------------------------------------------------------------------
    def write_report(self, actor: Actor, version_id: int, out_path: str | Path, *, query: str = "",
                     insight: str = "classes", table: str | None = None, compare: list[str] | None = None,
                     sql: str | None = None, settings: dict[str, Any] | None = None) -> Path:
        """Write one insight table (of the query, or of several queries side by side) or one SQL result
        restricted to `version_id` as CSV (Parquet when the path ends in .parquet)."""
        path = Path(out_path)
        if sql is not None:
            result = self.run_sql(actor, sql, [int(version_id)], row_limit=SQL_MAX_ROWS, timeout=SQL_MAX_TIMEOUT)
            data = self.sql_result_parquet(result) if path.suffix == ".parquet" else self.sql_result_csv(result)
        else:
            subsets = [_registry.Subset(int(version_id), q) for q in [query, *(compare or [])]]
            res = self.compare_insight(actor, subsets, insight, settings)
            name = table or next(iter(res.tables))
            if name not in res.tables:
                raise InvalidRequest(f"insight {insight!r} has no table {name!r}; it has {', '.join(res.tables)}")
            if path.suffix == ".parquet":
                sink = io.BytesIO()
                pq.write_table(res.tables[name].to_arrow(), sink)
                data = sink.getvalue()
            else:
                data = frame_csv(res.tables[name])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path


def _version_row(v: DatasetVersion, loaded: bool) -> dict[str, Any]:
    return {"version_id": v.id, "group_name": v.group.name, "split": v.split, "version": v.version,
            "status": v.status, "num_images": v.num_images, "num_annotations": v.num_annotations,
            "num_categories": v.num_categories, "content_hash": v.content_hash, "created_at": v.created_at,
            "loaded": loaded}


