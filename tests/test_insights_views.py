"""Saved insight views (CRUD, sharing, permissions), the precompute job and cache, click → DSL filters."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import select
from test_curation_support import make_user, make_version
from test_insights_support import InsightsApi

from dsgen_core.catalog.insight_models import InsightResult
from dsgen_core.errors import InvalidRequest, NotFound, PermissionDenied
from dsgen_core.insights import Subset, filters
from dsgen_core.insights.job import PRECOMPUTE
from dsgen_core.query import parse


@pytest.fixture
def iapi(dsgen_env):
    api = InsightsApi.open()
    yield api
    api.app.close()


def test_view_crud_sharing_and_permissions(iapi):
    admin = iapi.default_actor
    alice, bob = make_user(iapi, "alice"), make_user(iapi, "bob")
    mine = make_version(iapi, alice.id, group="alice-data")
    secret = make_version(iapi, admin.id, group="admin-private")
    view = iapi.create_view(alice, "night vs day", [Subset(mine, "tag:night", "night"), Subset(mine, "NOT tag:night")],
                            ["classes", "boxes"], {"bins": 10})
    assert view.link == f"/insights?view={view.id}" and view.owner == "alice" and not view.shared
    assert [v.name for v in iapi.list_views(alice)] == ["night vs day"]
    assert iapi.get_view(alice, view.id).subsets[0] == Subset(mine, "tag:night", "night")
    assert iapi.rename_view(alice, view.id, "  night/day ").name == "night/day"
    # bob may not read alice's group: the view is invisible, shared or not
    assert iapi.list_views(bob) == []
    iapi.share_view(alice, view.id)
    with pytest.raises(NotFound):
        iapi.get_view(bob, view.id)
    assert iapi.list_views(bob) == []
    # once bob may read the group, the shared link opens, but only the owner may change it
    iapi.grant(alice, "alice-data", "bob", "viewer")
    assert iapi.get_view(bob, view.id).name == "night/day"
    assert [v.id for v in iapi.list_views(bob, version_id=mine)] == [view.id]
    with pytest.raises(PermissionDenied):
        iapi.rename_view(bob, view.id, "mine now")
    with pytest.raises(PermissionDenied):
        iapi.delete_view(bob, view.id)
    # unshared again: bob loses it
    iapi.share_view(alice, view.id, shared=False)
    with pytest.raises(NotFound):
        iapi.get_view(bob, view.id)
    # a view may not show a version its owner cannot read; bad input is refused clearly
    with pytest.raises(NotFound):
        iapi.create_view(alice, "peek", [Subset(secret)], ["classes"])
    with pytest.raises(InvalidRequest, match="choose some of"):
        iapi.create_view(alice, "x", [Subset(mine)], ["pie"])
    with pytest.raises(InvalidRequest, match="view name"):
        iapi.create_view(alice, " ", [Subset(mine)], ["classes"])
    with pytest.raises(InvalidRequest, match="unknown insight settings"):
        iapi.create_view(alice, "x", [Subset(mine)], ["classes"], {"colour": 1})
    # the admin sees and may change everything; the dashboard data comes with the view
    assert iapi.update_view(admin, view.id, charts=["tags"]).charts == ["tags"]
    assert [r.name for r in iapi.view_insights(alice, view.id)] == ["tags"]
    iapi.delete_view(alice, view.id)
    assert iapi.list_views(alice) == [] and iapi.list_views(admin) == []


def test_precompute_job_fills_the_catalog_cache(iapi):
    admin = iapi.default_actor
    vid = make_version(iapi, admin.id)
    job_id = iapi.precompute_insights(admin, vid)
    assert iapi.get_job(admin, job_id).kind == PRECOMPUTE
    info = iapi.run_job_here(admin, job_id)
    assert info.status == "SUCCEEDED", info.error
    assert info.result["insights"] == ["classes", "resolution", "boxes"]
    with iapi.app.catalog.session() as s:
        stored = {r.insight: r.seq for r in s.scalars(select(InsightResult).where(InsightResult.version_id == vid))}
    assert stored == {"classes": -1, "resolution": -1, "boxes": -1}  # lake-only: valid for every curation state
    iapi.app.insight_results.clear()  # a fresh process: served from the catalog rows, not recomputed
    iapi.add_tags(admin, vid, 1, "night")
    assert iapi.insight(admin, vid, "classes").cached == [True]
    assert iapi.insight(admin, vid, "tags").cached == [False]


def test_clicks_become_dsl_filters_that_select_the_counted_images(iapi):
    admin = iapi.default_actor
    vid = make_version(iapi, admin.id)
    iapi.add_tags(admin, vid, 2, 'say "hi"')
    iapi.set_metadata(admin, vid, 3, {"weather": "fog", "speed": 41.5, "ok": True})
    checks = [("classes", "classes", "images"), ("tags", "tags", "images"), ("boxes", "per_image", "images"),
              ("resolution", "resolution", "images"), ("metadata", "values", "images"),
              ("metadata", "coverage", "images"), ("resolution", "width", "images"),
              ("cross", "cooccurrence", "images"), ("metadata", "numeric", "images")]
    seen = 0
    for base in ("", "id<=6 OR tag:x"):
        for insight, table, count in checks:
            res = iapi.insight(admin, vid, insight, query=base)
            for row in res.tables[table].to_dicts():
                dsl = filters.dsl_for(base, insight, table, row)
                parse(dsl)
                assert iapi.search_images(admin, vid, dsl).total == row[count], (insight, table, row, dsl)
                seen += 1
    assert seen > 30
    link = iapi.explore_link(vid, "tag:x", "classes", "classes", {"category": 'a "b"'})
    parsed = urlparse(link)
    assert parsed.path == "/explore"
    assert parse_qs(parsed.query) == {"version": [str(vid)], "q": ['(tag:x) category:"a \\"b\\""']}
    assert filters.dsl_for("", "boxes", "centres", {"gx": 1, "gy": 2, "instances": 3}) is None
