"""Fast page tests with streamlit's AppTest: every page renders on an empty installation and with data.

AppTest cannot fire `run_every` fragments or click in a browser; tests/browser covers that.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import coco_doc, image_rec, run_page, write_export, zip_folder
from streamlit.testing.v1 import AppTest

from dsgen_core.api import ImportRequest
from dsgen_core.sample_data import SampleSpec, generate_cvat_coco_zip

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
DATASETS, IMPORT, DATASET, JOBS = "pages/datasets.py", "pages/import_data.py", "pages/dataset.py", "pages/jobs.py"


@pytest.fixture
def app_env(dsgen_env):
    """The env of a fresh installation, with the UI's facade cache dropped before and after."""
    from pages._common import _open_api, draw_boxes

    _open_api.clear()
    draw_boxes.clear()
    yield dsgen_env
    _open_api.clear()


@pytest.fixture(scope="module")
def small_zip(tmp_path_factory) -> Path:
    return generate_cvat_coco_zip(tmp_path_factory.mktemp("gen") / "small.zip",
                                  SampleSpec(num_images=6, seed=5, workers=1))


@pytest.fixture
def imported(app_env, api, small_zip):
    """One READY version (group 'street', split train) imported through the facade."""
    actor = api.default_actor
    started = api.start_import(actor, ImportRequest(path=str(small_zip), group="street", split="train"))
    job = api.run_job_here(actor, started.job_id)
    assert job.status == "SUCCEEDED", job.error
    return api.get_version(actor, started.version_id)


def texts(elements) -> str:  # noqa: ANN001
    return "\n".join(str(e.value) for e in elements)


def captions(at: AppTest) -> str:
    return texts(at.caption)


def all_markdown(at: AppTest) -> str:
    return "\n".join([texts(at.markdown), texts(at.caption), texts(at.info), texts(at.success), texts(at.warning),
                      texts(at.error), texts(at.title), texts(at.header), texts(at.subheader)])


# ----- empty installation ------------------------------------------------------------------------


def test_datasets_empty_state(app_env):
    at = run_page()
    assert "No datasets yet" in texts(at.info)
    assert "dsgen demo" in texts(at.info)
    assert "dsgen · run" in captions(at)


def test_import_page_empty(app_env):
    at = run_page(IMPORT)
    assert "No worker is running" in texts(at.warning)
    assert at.radio(key="imp_mode").options == ["Upload a CVAT zip or tar", "Folder or zip on the server",
                                                "JSON file + images folder"]
    assert at.selectbox(key="imp_group_choice").options == ["➕ New group"]
    assert at.text_input(key="imp_split").value == "train"


def test_dataset_page_empty(app_env):
    at = run_page(DATASET)
    assert "No datasets yet" in texts(at.info)


def test_jobs_page_empty(app_env):
    at = run_page(JOBS)
    assert "No jobs yet" in texts(at.info)


# ----- with a dataset ----------------------------------------------------------------------------


def test_datasets_lists_group_with_matrix(imported):
    at = run_page()
    assert not at.info or "No datasets yet" not in texts(at.info)
    table = at.dataframe[0].value
    assert list(table["name"]) == ["street"]
    assert table["images"].iloc[0] == 6 and table["status"].iloc[0] == "🟢 READY"
    assert at.expander[0].label.startswith("**street**")
    matrix = at.dataframe[1].value
    assert list(matrix.index) == ["train"] and matrix.iloc[0, 0].startswith("🟢 READY")

    at.text_input(key="ds_filter").input("nothing-matches").run()
    assert "0 of 1 group(s)" in captions(at)
    at.text_input(key="ds_filter").input("STREET").run()
    assert "1 of 1 group(s)" in captions(at)


def test_dataset_page_from_query_param(imported):
    at = run_page(DATASET, version=str(imported.id))
    assert at.selectbox(key="ds_group").value == "street"
    assert at.selectbox(key="ds_version").value == imported.id
    assert at.metric[0].value == "🟢 READY" and at.metric[1].value == "6"
    assert {"Versions of the group", "Classes", "Samples", "Export"} <= {s.value for s in at.subheader}
    classes = at.dataframe[1].value  # versions, classes
    assert classes["instances"].sum() == imported.num_annotations
    assert len(at.get("image")) == 6  # one tile per image (≤ 12 samples)


def test_dataset_page_default_and_unknown_version(imported):
    at = run_page(DATASET)
    assert at.selectbox(key="ds_version").value == imported.id
    at = run_page(DATASET, version="99999")
    assert "not found" in texts(at.error)
    assert at.selectbox(key="ds_version").value == imported.id  # falls back to the newest


def test_jobs_page_lists_finished_job(imported):
    at = run_page(JOBS)
    table = at.dataframe[0].value
    assert "import" in set(table["kind"]) and "🟢 SUCCEEDED" in set(table["status"])


# ----- import through the page -------------------------------------------------------------------


def fill_server_import(at: AppTest, path: Path, group: str) -> AppTest:
    at.radio(key="imp_mode").set_value("Folder or zip on the server").run()
    at.text_input(key="imp_path").input(str(path))
    at.text_input(key="imp_group_new").input(group)
    return at.run()


def test_import_check_then_run_here(app_env, small_zip):
    at = run_page(IMPORT)
    fill_server_import(at, small_zip, "street")
    at.button(key="imp_check").click().run()
    assert not at.exception
    assert "No problems found" in texts(at.success)
    assert any(m.label == "images" and m.value == "6" for m in at.metric)

    at.button(key="imp_go").click().run()
    assert "Import job #1: street / train v1.0.0" in texts(at.subheader)
    assert "this job waits in the queue" in texts(at.warning)
    at.button(key="imp_run_here_1").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "🟢 READY" in texts(at.success) and "6 images" in texts(at.success)

    # a second import into the existing group takes its type and bumps the version
    at.button(key="imp_new").click().run()
    at.selectbox(key="imp_group_choice").set_value("street").run()
    at.text_input(key="imp_split").input("train").run()
    at.button(key="imp_go").click().run()
    assert "street / train v1.1.0" in texts(at.subheader)


def test_import_shows_facade_errors_not_traces(app_env, tmp_path):
    at = run_page(IMPORT)
    fill_server_import(at, tmp_path / "nope.zip", "street")
    at.button(key="imp_check").click().run()
    assert "no such file or folder" in texts(at.error)

    at.text_input(key="imp_path").input(str(tmp_path)).run()
    at.text_input(key="imp_group_new").input("bad/name").run()
    at.button(key="imp_go").click().run()
    assert "group name" in texts(at.error)

    at.text_input(key="imp_group_new").input("").run()
    at.button(key="imp_go").click().run()
    assert "Please give a group name." in texts(at.error)


def test_import_failure_shows_validation_report(app_env, tmp_path):
    doc = coco_doc([image_rec(1, "a.jpg"), image_rec(1, "b.jpg")], [])  # duplicate image id
    bad = zip_folder(write_export(tmp_path / "bad", doc, {"a.jpg": (64, 48), "b.jpg": (64, 48)}), tmp_path / "bad.zip")
    at = run_page(IMPORT)
    fill_server_import(at, bad, "broken")
    at.button(key="imp_check").click().run()
    assert at.error, "the check should report the duplicate id"
    at.button(key="imp_go").click().run()
    at.button(key="imp_run_here_1").click().run()
    assert not at.exception
    assert "Import failed" in texts(at.error)
    assert "error(s)" in texts(at.error)


def test_datasets_sort_and_type_filter(imported, api, small_zip):
    actor = api.default_actor
    started = api.start_import(actor, ImportRequest(path=str(small_zip), group="alpha", split="val",
                                                    dataset_type="SOURCE", annotations_only=True))
    assert api.run_job_here(actor, started.job_id).status == "SUCCEEDED"
    at = run_page()
    assert list(at.dataframe[0].value["name"]) == ["alpha", "street"]  # newest first
    at.selectbox(key="ds_sort").set_value("Name").run()
    at.radio(key="ds_dir").set_value("asc").run()
    assert list(at.dataframe[0].value["name"]) == ["alpha", "street"]
    at.radio(key="ds_dir").set_value("desc").run()
    assert list(at.dataframe[0].value["name"]) == ["street", "alpha"]
    at.multiselect(key="ds_types").set_value(["SOURCE"]).run()
    assert list(at.dataframe[0].value["name"]) == ["alpha"]
    assert [e.label.split(" · ")[0] for e in at.expander] == ["**alpha**"]


def test_dataset_page_switching_version_updates_url(imported, api, small_zip):
    actor = api.default_actor
    started = api.start_import(actor, ImportRequest(path=str(small_zip), group="street", split="val"))
    assert api.run_job_here(actor, started.job_id).status == "SUCCEEDED"
    at = run_page(DATASET, version=str(imported.id))
    assert at.header[0].value == "street / train v1.0.0"
    at.selectbox(key="ds_version").set_value(started.version_id).run()
    assert not at.exception
    assert at.header[0].value == "street / val v1.0.0"
    assert at.query_params["version"] == str(started.version_id)


def test_jobs_page_cancels_a_queued_job(app_env, api, small_zip):
    actor = api.default_actor
    started = api.start_import(actor, ImportRequest(path=str(small_zip), group="street"))
    at = run_page(JOBS)
    assert "🟢" not in texts(at.caption)
    assert "No worker is running" in texts(at.warning)
    assert at.selectbox(key="jobs_pick").value == started.job_id
    at.button(key="jobs_cancel").click().run()
    assert not at.exception
    assert api.get_job(actor, started.job_id).status == "CANCELLED"
    assert "⚫ CANCELLED" in set(at.dataframe[0].value["status"])
    assert api.get_version(actor, started.version_id).status == "ERROR"


def test_process_pool_after_a_page_run_does_not_rerun_the_app(app_env, tmp_path):
    """Streamlit installs app.py as __main__; a forkserver child must not execute the UI again.

    Runs in a fresh interpreter so the forkserver starts after DSGEN_HOME points at a canary
    folder: if a child ran app.py it would open (and create) a catalog there.
    """
    canary = tmp_path / "canary-home"
    script = f"""
import os, sys
from pathlib import Path
from PIL import Image
from streamlit.testing.v1 import AppTest
from dsgen_core.media import make_thumbnails
AppTest.from_file({APP!r}, default_timeout=60).run()
os.environ["DSGEN_HOME"] = {str(canary)!r}
os.environ.pop("DSGEN_CATALOG_URL", None)
tmp = Path({str(tmp_path)!r})
pairs = []
for i in range(4):
    src = tmp / f"{{i}}.jpg"
    Image.new("RGB", (800, 600), (i * 40, 10, 10)).save(src)
    pairs.append((src, tmp / "thumbs" / f"{{i}}.jpg"))
assert make_thumbnails(pairs, workers=2) == 4
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not canary.exists(), "a process-pool child ran app.py"


def test_dataset_page_links_parents_by_name(imported, api, small_zip):
    from dsgen_core.catalog.models import LineageEdge

    actor = api.default_actor
    started = api.start_import(actor, ImportRequest(path=str(small_zip), group="street", split="val"))
    assert api.run_job_here(actor, started.job_id).status == "SUCCEEDED"
    with api.app.catalog.session() as s:  # as a pull-back or a pipeline records it
        s.add(LineageEdge(parent_version_id=imported.id, child_version_id=started.version_id, kind="cvat_pull"))
    at = run_page(DATASET, version=str(started.version_id))
    assert not at.exception
    assert f"[street / train v1.0.0 (#{imported.id})](/dataset?version={imported.id})" in all_markdown(at)
