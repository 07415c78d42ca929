"""Import: a CVAT COCO 1.0 export (uploaded zip, server folder/zip, or JSON + images folder) into a group × split.

"Check path" runs every check without writing anything; "Import" queues a job that a worker runs; the page
follows the job until it ends and then shows the new version or the validation report of the failure.
Server paths are limited (in the core) to the import roots open to the user; the page shows which.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import streamlit as st

from dsgen_core.api import DATASET_TYPES, MODALITIES, TASK_TYPES, ImportRequest
from pages._common import (
    FAILED,
    PAGE_DATASET,
    badge,
    call,
    current_actor,
    get_api,
    guarded,
    render_report,
    run_caption,
)

MODE_UPLOAD = "Upload a CVAT zip or tar"
MODE_SERVER = "Folder or zip on the server"
MODE_JSON = "JSON file + images folder"
NEW_GROUP = "➕ New group"
JOB_KEY = "import_job"  # {"job_id", "version_id", "group", "split", "version"} of the job this session follows
REPORT_KEY = "import_report"  # (path shown, ValidationReport) of the last "Check path"
UPLOADS_KEY = "import_uploads"  # uploader file_id -> saved path, so a rerun does not save the upload again
UPLOAD_TYPES = ["zip", "tar", "gz", "tgz"]
CHOICES_KEY = "import_annotation_choices"  # source shown -> annotation files a check found in it

api = get_api()
st.title("📥 Import")
st.caption("Bring a CVAT **COCO 1.0** export into a dataset group × split as a new version.")

workers = api.live_workers()
if workers == 0:
    st.warning(
        "⚠️ No worker is running, so import jobs will wait in the queue. Start one with `dsgen serve` "
        "(or `dsgen worker`), or press **Run here** on the job to run it inside this web app."
    )


def save_upload(upload: Any) -> str | None:
    """Hand the uploaded archive to the core once per uploaded file (it keeps it in the user's upload folder)."""
    saved: dict[str, str] = st.session_state.setdefault(UPLOADS_KEY, {})
    known = saved.get(upload.file_id)
    if known and Path(known).exists():
        return known
    upload.seek(0)
    target = call("save_upload", upload, upload.name)
    if target is FAILED:
        return None
    saved[upload.file_id] = target
    return target


def server_path_hint() -> None:
    """Which server folders this user may name (the core refuses any other path with one message)."""
    if current_actor().is_admin:
        st.caption("As a site admin you may name any server path except dsgen's data folder.")
        return
    roots = call("list_import_roots")
    if roots is FAILED:
        return
    if roots:
        st.caption("Server folders open to you: " + ", ".join(f"`{r.path}`" for r in roots))
    else:
        st.info("No server folder is open to you for importing: upload the export instead, or ask a site "
                "admin to open one (Admin → Import roots).")


# ----- source -------------------------------------------------------------------------------------

mode = st.radio("Source", [MODE_UPLOAD, MODE_SERVER, MODE_JSON], horizontal=True, key="imp_mode")
path: str = ""
images_path: str | None = None
path_label = ""
if mode == MODE_UPLOAD:
    upload = st.file_uploader("CVAT export (COCO 1.0 zip, .tar, .tar.gz or .tgz)", type=UPLOAD_TYPES,
                              key="imp_upload")
    if upload is not None:
        path = save_upload(upload) or ""
        path_label = upload.name
        if path:
            st.caption(f"Received `{upload.name}` ({upload.size / 1e6:,.1f} MB)")
elif mode == MODE_SERVER:
    server_path_hint()
    path = st.text_input(
        "Server path (folder or zip)", key="imp_path",
        placeholder="/data/cvat/task_12_export.zip  or  /nas/exports/task_12/",
        help="A CVAT export unpacked (annotations/ + images/) or its zip, as seen by the dsgen server.",
    ).strip()
    path_label = path
else:
    server_path_hint()
    c1, c2 = st.columns(2)
    path = c1.text_input("COCO JSON file", key="imp_json", placeholder="/data/x/annotations/instances_default.json").strip()
    images_path = c2.text_input("Images folder", key="imp_images", placeholder="/data/x/images").strip() or None
    path_label = path

# ----- destination --------------------------------------------------------------------------------

groups = call("list_groups")
groups = [] if groups is FAILED else groups
by_name = {g.name: g for g in groups}
c_group, c_name, c_split = st.columns([2, 2, 1])
choice = c_group.selectbox("Dataset group", [NEW_GROUP, *by_name], key="imp_group_choice",
                           help="Add a version to an existing group, or create a new one.")
existing = by_name.get(choice)
if existing is None:
    group_name = c_name.text_input("New group name", key="imp_group_new", placeholder="e.g. street-scenes").strip()
else:
    group_name = existing.name
    c_name.text_input("Group", value=existing.name, disabled=True, key=f"imp_group_shown_{existing.id}")
split = c_split.text_input("Split", value="train", key="imp_split").strip()

description = ""
if existing is None:
    c_type, c_mod, c_tasks = st.columns([1, 1, 2])
    dataset_type = c_type.selectbox("Dataset type", DATASET_TYPES, key="imp_type")
    modality = c_mod.selectbox("Modality", MODALITIES, key="imp_modality")
    task_types = c_tasks.multiselect("Task types", TASK_TYPES, default=["detection"], key="imp_tasks")
    description = st.text_input("Description (optional)", key="imp_desc")
else:
    dataset_type, modality, task_types = existing.dataset_type, existing.modality, list(existing.task_types)
    st.caption(
        f"Type **{dataset_type}** · modality **{modality}** · task types **{', '.join(task_types) or '—'}** "
        f"(from the existing group; it has {len(existing.versions)} version(s))"
    )

c_annonly, c_inplace, _ = st.columns([1, 2, 1])
in_place = False
if mode == MODE_SERVER:
    in_place = c_inplace.checkbox(
        "Register in place (copy no image bytes)", key="imp_in_place",
        help="The images stay where they are (e.g. on the NAS) and are referenced, not copied.",
    )
annotations_only = c_annonly.checkbox(
    "Annotations only", key="imp_ann_only", help="Import the annotations without image files.",
)


def annotation_choice() -> str | None:
    """When a check of this same source found several annotation files, the one the user picks."""
    choices = st.session_state.get(CHOICES_KEY, {}).get(path_label or path)
    if not choices:
        return None
    return st.selectbox("Annotation file", choices, key="imp_annotation_file",
                        help="The export holds several annotation files; pick the one to import.")


annotations_path = annotation_choice()


def build_request() -> ImportRequest | None:
    """The request from the widgets, or None with a message when something required is missing."""
    missing = []
    if not path:
        missing.append({MODE_UPLOAD: "a zip to upload", MODE_SERVER: "a path", MODE_JSON: "a JSON file"}[mode])
    if not group_name:
        missing.append("a group name")
    if not split:
        missing.append("a split")
    if missing:
        st.error("Please give " + " and ".join(missing) + ".")
        return None
    return ImportRequest(
        path=path, group=group_name, split=split, dataset_type=dataset_type, modality=modality,
        task_types=list(task_types), images_path=images_path, annotations_path=annotations_path,
        in_place=in_place, annotations_only=annotations_only, description=description,
    )


c_check, c_import, _ = st.columns([1, 1, 4])
check_clicked = c_check.button("🔍 Check path", key="imp_check", width="stretch")
import_clicked = c_import.button("📥 Import", key="imp_go", type="primary", width="stretch")

if check_clicked:
    st.session_state.pop(REPORT_KEY, None)  # a refused or failed check must not leave an older report standing
    req = build_request()
    if req is not None:
        with st.spinner("Checking …"):
            report = call("check_import_path", req)
        if report is not FAILED:
            st.session_state[REPORT_KEY] = (path_label or req.path, report)
            if report.stats.get("annotation_files") and annotations_path is None:
                st.session_state.setdefault(CHOICES_KEY, {})[path_label or req.path] = report.stats["annotation_files"]
                st.rerun()  # show the choice of annotation file above the buttons

if import_clicked:
    req = build_request()
    if req is not None:
        started = call("start_import", req)
        if started is not FAILED:
            st.session_state[JOB_KEY] = {
                "job_id": started.job_id, "version_id": started.version_id, "group": req.group,
                "split": req.split, "version": started.version,
            }
            st.session_state.pop(REPORT_KEY, None)

if REPORT_KEY in st.session_state:
    shown, report = st.session_state[REPORT_KEY]
    with st.container(border=True):
        render_report(report, title=f"Check of `{shown}`")


# ----- the running job ----------------------------------------------------------------------------


def progress_text(stage: str, processed: int, total: int) -> str:
    count = f" · {processed:,} / {total:,}" if total else ""
    return f"{stage or 'waiting'}{count}"


@st.fragment(run_every="500ms")
def live_job(job_id: int) -> None:
    """Polls the job row; when the job ends the whole page reruns to show the result."""
    job = guarded(lambda: api.get_job(current_actor(), job_id))
    if job is FAILED:
        return
    st.progress(job.fraction, text=f"{badge(job.status)} · {progress_text(job.stage, job.processed, job.total)}")
    if job.finished:
        st.rerun(scope="app")


def run_here(job_id: int) -> None:
    """Run the queued job in this process, showing its progress as it goes."""
    bar = st.progress(0.0, text="starting …")
    last = [0.0]

    def on_progress(stage: str, processed: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] < 0.2 and processed < total:
            return
        last[0] = now
        bar.progress(min(1.0, processed / total) if total else 0.0, text=progress_text(stage, processed, total))

    with st.spinner("Running the import here …"):
        call("run_job_here", job_id, on_progress=on_progress)


def job_panel(info: dict[str, Any]) -> None:
    job_id = int(info["job_id"])
    st.subheader(f"Import job #{job_id}: {info['group']} / {info['split']} v{info['version']}")
    job = call("get_job", job_id)
    if job is FAILED:
        if st.button("Forget this job", key="imp_forget_missing"):
            st.session_state.pop(JOB_KEY, None)
            st.rerun()
        return
    if not job.finished:
        if job.status == "QUEUED" and workers == 0:
            st.warning("No worker is running: this job waits in the queue.")
            if st.button("▶️ Run here", key=f"imp_run_here_{job_id}"):
                run_here(job_id)
                st.rerun()
        c_cancel, _ = st.columns([1, 5])
        if c_cancel.button("✖️ Cancel job", key=f"imp_cancel_{job_id}"):
            call("cancel_job", job_id)
            st.rerun()
        live_job(job_id)
        return

    version = call("get_version", int(info["version_id"]))
    if job.status == "SUCCEEDED" and version is not FAILED:
        st.success(
            f"✅ **{version.group_name} / {version.split} v{version.version}** is {badge(version.status)} — "
            f"{version.num_images:,} images, {version.num_annotations:,} annotations, "
            f"{version.num_categories:,} classes."
        )
        st.page_link(PAGE_DATASET, label="Open the dataset", icon="🔎", query_params={"version": str(version.id)})
        if version.validation_report.findings:
            render_report(version.validation_report, title="Warnings kept with the version")
    elif job.status == "CANCELLED":
        st.warning(f"Import cancelled. {job.error or ''}")
    else:
        st.error(f"❌ Import failed: {job.error or job.status}")
        if version is not FAILED:
            render_report(version.validation_report)
    if job.log:
        with st.expander("Job log"):
            st.code(job.log[-5000:], language=None)
    if st.button("Start another import", key="imp_new"):
        st.session_state.pop(JOB_KEY, None)
        st.rerun()


if JOB_KEY in st.session_state:
    with st.container(border=True):
        job_panel(st.session_state[JOB_KEY])

run_caption()
