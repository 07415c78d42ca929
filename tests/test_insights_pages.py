"""Insights and SQL pages with AppTest (typing, toggles, saving a view, running SQL) and `dsgen report`."""

from __future__ import annotations

import csv
import io

import pytest
from helpers import run_page
from streamlit.testing.v1 import AppTest
from test_curation_support import make_version
from test_query_dsl import IMAGES

from dsgen_core.cli import main

INSIGHTS, SQL = "pages/insights.py", "pages/sql.py"


@pytest.fixture
def app_env(dsgen_env):
    from pages._common import _open_api

    _open_api.clear()
    yield dsgen_env
    _open_api.clear()


@pytest.fixture
def version(app_env, api, admin) -> int:
    vid = make_version(api, admin.id, group="street")
    api.add_tags(admin, vid, 1, "night")
    return vid


def open_page(page: str, **query: str) -> AppTest:
    return run_page(page, **query)


def test_insights_page_filters_compares_and_saves_a_view(version):
    at = open_page(INSIGHTS, version=str(version), q="tag:night")
    assert at.text_input(key="ins_query").value == "tag:night"
    assert [s.value for s in at.subheader] == ["Class distribution", "Image resolution", "Boxes"]
    at.toggle(key="ins_compare").set_value(True).run()
    at.text_input(key="ins_query_b").input("NOT tag:night").run()
    assert not at.exception
    assert any("A vs B" in c.value for c in at.caption)
    at.text_input(key="ins_view_name").input("night vs rest").run()
    at.button[[b.label for b in at.button].index("Save view")].click().run()
    assert any("Saved “night vs rest”" in s.value for s in at.success)
    view_id = at.session_state["ins_view_id"]
    again = open_page(INSIGHTS, view=str(view_id))
    assert again.text_input(key="ins_query").value == "tag:night"
    assert again.text_input(key="ins_query_b").value == "NOT tag:night"
    bad = open_page(INSIGHTS, version=str(version), q="widht>3")
    assert any("widht" in e.value for e in bad.error)


def test_sql_page_runs_and_refuses(version):
    at = open_page(SQL)
    at.text_area(key="sql_text").input("SELECT count(*) AS n FROM images").run()
    at.button[[b.label for b in at.button].index("Run")].click().run()
    assert not at.exception
    assert at.dataframe[0].value.to_dict("records") == [{"n": len(IMAGES)}]
    at.text_area(key="sql_text").input("SELECT * FROM read_csv('/etc/passwd')").run()
    at.button[[b.label for b in at.button].index("Run")].click().run()
    assert any("disabled" in e.value for e in at.error)


def test_report_command_writes_stable_csv(version, tmp_path, capsys):
    out = tmp_path / "report.csv"
    assert main(["report", str(version), "--query", "tag:night OR id<=3", "--out", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert list(rows[0]) == ["subset", "category_id", "category", "supercategory", "images", "instances",
                             "instance_share"]
    assert {r["subset"] for r in rows} == {"tag:night OR id<=3"}
    cmp = tmp_path / "cmp.csv"
    assert main(["report", str(version), "--query", "tag:night", "--compare", "NOT tag:night", "--insight", "boxes",
                 "--table", "per_image", "--out", str(cmp)]) == 0
    assert {r["subset"] for r in csv.DictReader(cmp.open())} == {"tag:night", "NOT tag:night"}
    sql = tmp_path / "sql.csv"
    assert main(["report", str(version), "--sql", "SELECT image_id FROM images ORDER BY 1 LIMIT 2",
                 "--out", str(sql)]) == 0
    assert sql.read_text().splitlines() == ['"image_id"', "1", "2"]
    assert main(["report", str(version), "--insight", "nope", "--out", str(sql)]) == 1
    assert "unknown insight" in capsys.readouterr().err


def test_insights_link_to_an_unknown_version_says_so(version):
    at = open_page(INSIGHTS, version="99999")
    assert any("99999" in str(w.value) and "not a READY version" in str(w.value) for w in at.warning)
