"""ExploreFacade on a real imported version: overlays of a page, image detail, thumbnail/image files and
rights (a user without a grant gets NotFound, like a missing image); plus the page's pure helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsgen_core.api import Dsgen, ImportRequest
from dsgen_core.errors import InvalidRequest, NotFound
from dsgen_core.facade_explore import ExploreFacade
from dsgen_core.importing.job import thumb_path
from dsgen_core.sample_data import SampleSpec, generate_cvat_coco_zip
from pages._explore_state import (
    add_term,
    caret_line,
    decode_ids,
    encode_ids,
    literal,
    parse_value,
    quote_value,
)

_Api = Dsgen
assert issubclass(_Api, ExploreFacade)


@pytest.fixture(scope="module")
def sample_zip(tmp_path_factory) -> Path:
    return generate_cvat_coco_zip(tmp_path_factory.mktemp("gen") / "s.zip",
                                  SampleSpec(num_images=24, seed=7, workers=1, polygon_fraction=0.5))


@pytest.fixture
def xapi(dsgen_env):
    api = _Api.open()
    yield api
    api.app.close()


def import_version(api: _Api, zip_path: Path, thumbs: bool = True) -> int:
    actor = api.default_actor
    started = api.start_import(actor, ImportRequest(path=str(zip_path), group="street"))
    assert api.run_job_here(actor, started.job_id).status == "SUCCEEDED"
    if thumbs:
        for job in api.list_jobs(actor):
            if job.status == "QUEUED" and job.kind == "thumbnails":
                assert api.run_job_here(actor, job.id).status == "SUCCEEDED"
    return started.version_id


def test_page_overlays_follow_search_order(xapi, sample_zip):
    admin = xapi.default_actor
    vid = import_version(xapi, sample_zip, thumbs=False)
    page = xapi.search_images(admin, vid, "boxes>0", "boxes", True, 10, 0)
    ov = xapi.page_overlays(admin, vid, page.image_ids)
    assert [t.image_id for t in ov.tiles] == page.image_ids
    assert "person" in ov.categories
    counts = [len(t.boxes) for t in ov.tiles]
    assert counts == sorted(counts, reverse=True) and counts[0] > 0
    tile = ov.tiles[0]
    for c, x, y, w, h in tile.boxes:
        assert 0 <= c < len(ov.categories) and w > 0 and h > 0 and x + w <= tile.width + 1 and y + h <= tile.height + 1
    rings = [r for t in ov.tiles for _, rs in t.polygons for r in rs]
    assert rings and all(len(r) % 2 == 0 and 6 <= len(r) <= 2 * 96 for r in rings)
    assert xapi.page_overlays(admin, vid, []).tiles == []
    with pytest.raises(InvalidRequest):
        xapi.page_overlays(admin, vid, range(2000))


def test_image_detail_and_curation(xapi, sample_zip):
    admin = xapi.default_actor
    vid = import_version(xapi, sample_zip, thumbs=False)
    iid = xapi.search_images(admin, vid, "boxes>2", limit=1).image_ids[0]
    xapi.add_tags(admin, vid, iid, ["night"])
    xapi.set_metadata(admin, vid, iid, {"weather": "rain", "speed": 42})
    d = xapi.image_detail(admin, vid, iid)
    assert d.image_id == iid and d.width > 0 and d.sha256
    assert len(d.annotations) >= 3 and {a.category for a in d.annotations} <= set(d.categories)
    assert all(a.bbox is None or a.bbox[2] > 0 for a in d.annotations)
    assert d.tags == ["night"] and d.metadata == {"speed": 42, "weather": "rain"}
    with pytest.raises(NotFound):
        xapi.image_detail(admin, vid, 99_999)


def test_files_and_rights(xapi, sample_zip):
    admin = xapi.default_actor
    vid = import_version(xapi, sample_zip, thumbs=False)  # no thumbnails yet: made on the fly
    iid = xapi.search_images(admin, vid, "", limit=1).image_ids[0]
    sha = xapi.image_detail(admin, vid, iid).sha256
    assert not thumb_path(xapi.app, sha).exists()
    thumb = xapi.thumbnail_file(admin, vid, iid)
    assert thumb == thumb_path(xapi.app, sha) and thumb.read_bytes()[:3] == b"\xff\xd8\xff"
    full = xapi.image_file(admin, vid, iid)
    assert full is not None and full.stat().st_size > thumb.stat().st_size

    xapi.create_user(admin, "eve", password="eve-password-1")
    eve = xapi.actor("eve")
    for method in ("thumbnail_file", "image_file", "image_detail"):
        with pytest.raises(NotFound):
            getattr(xapi, method)(eve, vid, iid)
    with pytest.raises(NotFound):
        xapi.page_overlays(eve, vid, [iid])
    with pytest.raises(NotFound):
        xapi.thumbnail_file(admin, vid, 99_999)


def test_query_terms_for_facet_clicks():
    assert quote_value("car") == "car"
    assert quote_value("traffic light") == '"traffic light"'
    assert quote_value("42") == '"42"' and quote_value("true") == '"true"' and quote_value('a"b') == '"a\\"b"'
    assert literal(True) == "true" and literal(3.0) == "3" and literal(2.5) == "2.5" and literal("x y") == '"x y"'
    assert add_term("", "tag:a") == "tag:a"
    assert add_term("tag:a", "tag:a") == "tag:a"
    assert add_term("tag:a OR tag:b", "category:car") == "(tag:a OR tag:b) category:car"
    assert parse_value("true") is True and parse_value("12") == 12 and parse_value("1.5") == 1.5
    assert parse_value("rain") == "rain" and parse_value("1e3") == 1000.0
    assert caret_line("widht>3", 0) == "widht>3\n^"


def test_selection_ranges_round_trip():
    ids = {1, 2, 3, 7, 10, 11}
    assert encode_ids(ids) == "1-3,7,10-11"
    assert decode_ids("1-3,7,10-11") == ids
    assert decode_ids("x,5,9-7,-3") == {5}
    assert len(decode_ids("0-99999999", limit=1000)) == 0
