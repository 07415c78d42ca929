"""The Explore page under AppTest: query, count, DSL error with position, facets into the query, URL
state, bulk tagging of a selection with undo, detail view. (Clicks on tiles: tests/browser.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import run_page
from streamlit.testing.v1 import AppTest

from dsgen_core.api import ImportRequest
from dsgen_core.sample_data import SampleSpec, generate_cvat_coco_zip

EXPLORE = "pages/explore.py"


@pytest.fixture(scope="module")
def sample_zip(tmp_path_factory) -> Path:
    return generate_cvat_coco_zip(tmp_path_factory.mktemp("gen") / "s.zip", SampleSpec(num_images=30, seed=3, workers=1))


@pytest.fixture
def version_id(dsgen_env, api, sample_zip) -> int:
    from pages._common import _open_api

    _open_api.clear()
    actor = api.default_actor
    started = api.start_import(actor, ImportRequest(path=str(sample_zip), group="street"))
    assert api.run_job_here(actor, started.job_id).status == "SUCCEEDED"
    yield started.version_id
    _open_api.clear()


def open_explore(**query: str) -> AppTest:
    return run_page(EXPLORE, **query)


def matching(at: AppTest) -> int:
    metric = next(m for m in at.metric if m.label == "Matching images")
    return int(str(metric.value).replace(",", ""))


def search(at: AppTest, text: str) -> None:
    at.text_input(key="ex_q").set_value(text).run()
    assert not at.exception, [e.value for e in at.exception]


def test_query_count_error_and_url(version_id):
    at = open_explore()
    assert matching(at) == 30
    search(at, "boxes>3")
    n = matching(at)
    assert 0 < n < 30
    assert at.query_params["q"] == "boxes>3" and at.query_params["v"] == str(version_id)
    search(at, "widht>3")
    err = " ".join(str(e.value) for e in at.error)
    assert "position 0" in err and "unknown field 'widht'" in err and "width" in err
    assert any("widht>3\n^" in str(c.value) for c in at.code)


def test_facet_click_adds_term(version_id):
    at = open_explore()
    button = next(b for b in at.sidebar.button if b.key == "fc:person")
    button.click().run()
    assert at.text_input(key="ex_q").value == "category:person"
    assert matching(at) < 30


def test_deep_link_bulk_tag_undo_and_detail(version_id, api):
    admin = api.default_actor
    ids = api.search_images(admin, version_id, "", limit=5).image_ids
    at = open_explore(v=str(version_id), q="", sel=f"{ids[0]},{ids[1]}")
    assert "Selected: 2" in " ".join(str(m.value) for m in at.markdown)
    at.text_input(key="ex_tag").set_value("review").run()
    next(b for b in at.button if b.key == "ex_apply").click().run()
    assert not at.exception
    assert sorted(api.search_images(admin, version_id, "tag:review").image_ids) == sorted(ids[:2])
    next(b for b in at.button if b.key == "ex_undo").click().run()
    assert api.search_images(admin, version_id, "tag:review").total == 0

    search(at, "boxes>0")  # a new query: a new, empty selection (never the old positions)
    assert "Selected: 0" in " ".join(str(m.value) for m in at.markdown)

    at = open_explore(v=str(version_id), q="", img=str(ids[2]), pos="2")
    assert any(ids and "of 30" in str(m.value) for m in at.markdown)
    next(b for b in at.button if b.key == "ex_nav1").click().run()
    assert at.query_params["img"] == str(ids[3]) and at.query_params["pos"] == "3"


def test_select_all_asks_confirmation_above_limit(version_id, monkeypatch):
    import dsgen_core.facade_curation as fc

    monkeypatch.setattr(fc, "CONFIRM_ABOVE", 10)  # the same code path as 1,000 with a small version
    at = open_explore()
    next(b for b in at.button if b.key == "ex_sel_all").click().run()
    at.text_input(key="ex_tag").set_value("all").run()
    next(b for b in at.button if b.key == "ex_apply").click().run()
    assert any("changes **30** images" in str(w.value) for w in at.warning)
    next(b for b in at.button if b.key == "ex_confirm").click().run()
    assert not at.exception
    assert any("30 images" in str(s.value) for s in at.success)


def test_link_to_an_unknown_version_says_so(version_id):
    at = open_explore(v="99999", q="boxes>3")
    assert any("99999" in str(w.value) and "not a READY version" in str(w.value) for w in at.warning)
    assert at.query_params["v"] == str(version_id)  # the page shows the version it fell back to
