"""The Import page's choice of annotation file (AppTest): a check that finds several offers them, the
import then uses the one picked."""

from __future__ import annotations

import pytest
from helpers import run_page, simple_export

IMPORT = "pages/import_data.py"


@pytest.fixture
def app_env(dsgen_env):
    from pages._common import _open_api

    _open_api.clear()
    yield dsgen_env
    _open_api.clear()


def test_several_annotation_files_are_offered_and_the_pick_is_imported(app_env, api, tmp_path):
    root = simple_export(tmp_path / "exp", n=3)
    doc = (root / "annotations" / "instances_default.json").read_text()
    (root / "annotations" / "instances_Train.json").write_text(doc.replace('"frame_003.jpg"', '"missing.jpg"'))
    at = run_page(IMPORT)
    at.radio(key="imp_mode").set_value("Folder or zip on the server").run()
    at.text_input(key="imp_path").set_value(str(root)).run()
    at.text_input(key="imp_group_new").set_value("two").run()
    at.button(key="imp_check").click().run()
    assert not at.exception
    errors = "\n".join(str(e.value) for e in at.markdown)
    assert "several_annotation_files" in errors
    pick = at.selectbox(key="imp_annotation_file")
    assert pick.options == ["annotations/instances_Train.json", "annotations/instances_default.json"]
    pick.set_value("annotations/instances_default.json").run()
    at.button(key="imp_check").click().run()
    assert "No problems found" in "\n".join(str(e.value) for e in at.success)
    at.button(key="imp_go").click().run()
    job = api.list_jobs(api.default_actor)[0]
    assert job.kind == "import"
    assert api.run_job_here(api.default_actor, job.id).status == "SUCCEEDED"
    assert api.get_version(api.default_actor, job.version_id).num_images == 3
