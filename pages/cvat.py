"""CVAT: send a filtered version to CVAT as task(s), follow the export, and pull relabeled annotations back.

The page only reads widgets and calls the facade; exports run as jobs in the worker, pulls show a diff first.
"""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from dsgen_core.cvat_sync.records import ExportPreview, ExportRequest
from pages._common import badge as _badge
from pages._common import call, current_actor, fmt_time, get_api, run_caption, version_names

FOLLOW_KEY = "cvat_follow_export"  # export id this session follows
PREVIEW_KEY = "cvat_preview"  # the last PullPreview
EXPORT_PREVIEW_KEY = "cvat_export_preview"  # the last ExportPreview
MAX_CHANGES = 500  # rows of the pull preview's change table
EXIF_CHOICES = {"": "ask me first", "rotate": "rotate: send upright, turn shapes", "as-is": "as-is: send unchanged"}


def badge(status: str) -> str:
    return {"DONE": "🟢 DONE"}.get(status) or _badge(status)


def show_export_preview(p: ExportPreview) -> None:
    """What an export would send; a warning (and the choices) for images with an EXIF orientation."""
    how = "file references" if p.send_references else "image bytes"
    st.markdown(f"**Preview:** {p.num_images} images in {p.num_tasks} task(s) "
                f"({', '.join(p.task_names[:5])}{', …' if p.num_tasks > 5 else ''}) as {how} over "
                f"connection {p.connection!r}. Nothing was sent.")
    if not p.oriented:
        return
    listed = ", ".join(map(str, p.oriented[:10])) + (f" and {len(p.oriented) - 10} more" if len(p.oriented) > 10
                                                     else "")
    text = f"{len(p.oriented)} image(s) carry an EXIF orientation, so CVAT shows them turned: {listed}."
    if p.needs_exif_choice:
        st.warning(text + " Choose **rotate** (send them upright, every shape turned with them) or **as-is** (send "
                   "them unchanged) under *Images with an EXIF orientation*: without a choice the export is refused.")
    else:
        st.info(text + (" They go upright with their shapes turned." if p.exif == "rotate" else
                        " They go unchanged, as chosen."))


actor = current_actor()
st.title("🔁 CVAT")
st.caption("Export a filtered version to CVAT for (re)labeling, then pull the annotations back as a new version.")
tab_export, tab_exports, tab_pull, tab_conn = st.tabs(["Export", "Exports", "Pull back", "Connections"])

# ----- connections ----------------------------------------------------------------------------
with tab_conn:
    conns = call("list_cvat_connections") or []
    if conns:
        st.dataframe(pd.DataFrame([{"name": c.name, "url": c.url, "user": c.username, "auth": c.auth_kind,
                                    "organization": c.org or "", "share folder": c.share_root or "",
                                    "cloud storage": c.cloud_storage_id} for c in conns]), hide_index=True)
    else:
        st.info("No CVAT connection yet: add one below. Secrets are stored in the catalog and never shown again.")
    with st.form("cvat_add_connection", clear_on_submit=True):
        st.subheader("Add a connection")
        c1, c2 = st.columns(2)
        name = c1.text_input("Connection name", value="cvat")
        url = c2.text_input("CVAT URL", placeholder="https://cvat.example.com")
        c3, c4, c5 = st.columns(3)
        kind = c3.selectbox("Credentials", ["login", "basic", "token", "pat"],
                            help="login/basic: username + password; token: a CVAT API key; pat: personal access "
                                 "token (CVAT ≥ 2.48)")
        username = c4.text_input("CVAT username")
        secret = c5.text_input("Password or token", type="password")
        c6, c7, c8 = st.columns(3)
        org = c6.text_input("Organization (optional)")
        share_root = c7.text_input(
            "Share folder (optional)", placeholder="/mnt/cvat_share",
            help="The folder of this server that CVAT mounts as its share: exports of images stored under it can "
                 "send file references instead of bytes.")
        storage = c8.number_input("Cloud storage id (optional)", min_value=0, value=0,
                                  help="With a share folder: the CVAT cloud storage holding the same files under the "
                                       "same paths (0: none, use CVAT's share).")
        if st.form_submit_button("Save connection") and call(
                "add_cvat_connection", name, url, secret=secret, username=username, auth_kind=kind, org=org or None,
                share_root=share_root.strip() or None, cloud_storage_id=int(storage) or None):
            st.success(f"Saved connection {name!r}")
            st.rerun()

# ----- export ---------------------------------------------------------------------------------
with tab_export:
    groups = call("list_groups") or []
    versions = [(g, v) for g in groups for v in g.versions if v.status == "READY"]
    if not versions:
        st.info("No READY version to export yet: import one first.")
    elif not conns:
        st.info("Add a CVAT connection first (tab **Connections**).")
    else:
        labels = {f"{g.name} / {v.split} v{v.version} (#{v.id}, {v.num_images} images)": v.id for g, v in versions}
        with st.form("cvat_export"):
            version_label = st.selectbox("Version", list(labels))
            query = st.text_input("Filter (search DSL, empty = all images)", placeholder="category:car AND NOT tag:done")
            c1, c2, c3 = st.columns(3)
            conn_name = c1.selectbox("CVAT connection", [c.name for c in conns])
            project = c2.text_input("CVAT project (existing or new)", value="relabel")
            task_name = c3.text_input("Task name", value="relabel")
            c4, c5, c6 = st.columns(3)
            max_images = c4.number_input("Max images per task", min_value=1, max_value=100_000, value=1000)
            segment = c5.number_input("Segment size (frames per job)", min_value=1, max_value=100_000, value=100)
            quality = c6.number_input("Image quality", min_value=1, max_value=100, value=95)
            c7, c8, c9 = st.columns(3)
            preload = c7.checkbox("Pre-load our annotations", value=True)
            shared = [c.name for c in conns if c.share_root]
            references = c8.checkbox(
                "Send file references, not bytes", value=False, disabled=not shared,
                help="CVAT reads the images itself from its share (or cloud storage): for images stored under the "
                     "connection's share folder" + (f" ({', '.join(shared)})" if shared else
                                                    "; no connection has a share folder yet (tab Connections)"))
            exif = c9.selectbox(
                "Images with an EXIF orientation", list(EXIF_CHOICES), format_func=EXIF_CHOICES.get,
                help="CVAT shows such images turned while our boxes are in the stored pixels' coordinates. "
                     "rotate: send them upright with every shape turned exactly with them (turned back on pull). "
                     "as-is: send images and shapes unchanged (right when the annotations were made on the upright "
                     "image). Without a choice, an export that has such images is refused.")
            b1, b2 = st.columns([1, 5])
            previewing = b1.form_submit_button("Preview")
            exporting = b2.form_submit_button("Export to CVAT", type="primary")
            req = ExportRequest(
                version_id=labels[version_label], connection=conn_name, project=project, task_name=task_name,
                query=query, max_images_per_task=int(max_images), segment_size=int(segment),
                image_quality=int(quality), preload_annotations=preload, send_references=references,
                exif=exif or None)
            if previewing:
                st.session_state[EXPORT_PREVIEW_KEY] = call("preview_cvat_export", req) or None
            if exporting:
                st.session_state.pop(EXPORT_PREVIEW_KEY, None)
                started = call("start_cvat_export", req)
                if started:
                    st.session_state[FOLLOW_KEY] = started.export_id
                    st.success(f"Export #{started.export_id} queued: {started.num_images} images in "
                               f"{started.num_tasks} task(s).")
        if shown := st.session_state.get(EXPORT_PREVIEW_KEY):
            show_export_preview(shown)

    @st.fragment(run_every="1s")
    def follow() -> None:
        export_id = st.session_state.get(FOLLOW_KEY)
        if not export_id:
            return
        e = call("get_cvat_export", export_id)
        if not e:
            return
        job = call("get_job", e.job_id) if e.job_id else None
        st.markdown(f"**Export #{e.id}** · {badge(e.status)}")
        if job and not job.finished:
            st.progress(job.fraction, text=f"{job.stage} ({job.processed}/{job.total})" if job.total else job.stage)
            if job.status == "QUEUED" and not get_api().live_workers():
                st.warning("No worker is running: start one with `dsgen worker`.")
        if e.status == "DONE":
            for t in e.tasks:
                st.markdown(f"✅ CVAT task [{t.name} (#{t.task_id})]({t.url}) · {t.num_images} images")
        elif e.status in ("FAILED", "CANCELLED"):
            st.error(f"Export failed: {e.error}. Resume it on the **Exports** tab.")
        if e.status in ("DONE", "FAILED", "CANCELLED") and job and job.finished:
            st.session_state[FOLLOW_KEY + "_done"] = e.id

    follow()

# ----- exports list ---------------------------------------------------------------------------
with tab_exports:
    exports = call("list_cvat_exports") or []
    if not exports:
        st.info("No exports yet.")
    else:
        names = version_names(groups)
        st.dataframe(pd.DataFrame([{
            "id": e.id, "status": badge(e.status), "version": names.get(e.version_id, f"#{e.version_id}"),
            "images": e.num_images, "sent as": "references" if e.send_references else "bytes",
            "query": e.query or "(all images)", "project": e.project_name,
            "tasks": ", ".join(str(t.task_id) for t in e.tasks if t.task_id) or f"none created ({len(e.tasks)} planned)",
            "first task": e.links[0] if e.links else None, "created": fmt_time(e.created_at),
            "error": e.error or "",
        } for e in exports]), hide_index=True, column_config={"first task": st.column_config.LinkColumn(
            "first task", display_text=r".*/tasks/(\d+)\D*$")})
        by_id = {e.id: e for e in exports}
        pick = st.selectbox("Export", list(by_id), format_func=lambda i: (
            f"#{i} · {by_id[i].tasks[0].name if by_id[i].tasks else ''} · {by_id[i].query or '(all images)'} · "
            f"{by_id[i].status}"))
        chosen = by_id[pick]
        for t in chosen.tasks:
            st.markdown(f"- part {t.part + 1}: {t.name} · {t.state} · " + (f"[task #{t.task_id}]({t.url})"
                                                                         if t.url else "not created yet"))
        if chosen.job_id and (job := call("get_job", chosen.job_id)):
            with st.expander("Log"):
                st.code(job.log[-8000:] or "(empty)", language=None)
        if chosen.status in ("QUEUED", "RUNNING"):
            st.caption("A running export whose process was killed is taken over by a worker (or by Resume) once its "
                       "job has been silent for the stale interval (DSGEN_JOB_STALE_SECONDS, 30 s by default).")
        if chosen.status != "DONE" and st.button("Resume export", type="primary"):
            if started := call("resume_cvat_export", chosen.id):
                st.session_state[FOLLOW_KEY] = chosen.id
                st.success(f"Export #{chosen.id} resumed (job {started.job_id}); created tasks are continued.")

# ----- pull back ------------------------------------------------------------------------------
with tab_pull:
    editable = [g.name for g in groups if g.role in ("editor", "owner")] if groups else []
    with st.form("cvat_pull"):
        c1, c2 = st.columns(2)
        task_ref = c1.text_input("CVAT task id(s) or link(s)", placeholder="12 or https://cvat/tasks/12")
        into = c2.selectbox("Into group", editable or ["(no group you can edit)"])
        if st.form_submit_button("Preview pull"):
            refs = [r for r in task_ref.replace(",", " ").split() if r]
            if preview := call("preview_pull", refs, into):
                st.session_state[PREVIEW_KEY] = preview
    preview = st.session_state.get(PREVIEW_KEY)
    if preview:
        d = preview.diff
        vid, names = preview.source_version_id, version_names(groups)
        source = f"{names[vid]} (#{vid})" if vid in names else f"version #{vid}"
        st.subheader(f"Diff of task(s) {', '.join(map(str, preview.task_ids))} against {source}")
        cols = st.columns(6)
        for col, (label, value) in zip(cols, [("images changed", d.images_changed), ("added", d.added),
                                              ("removed", d.removed), ("moved", d.moved),
                                              ("relabeled", d.relabeled), ("attributes", d.attributes_changed)],
                                       strict=True):
            col.metric(label, value)
        for old, new in d.classes_renamed:
            st.markdown(f"- class renamed: **{old} → {new}**")
        for name in d.classes_added:
            st.markdown(f"- class added: **{name}**")
        if d.images_deleted:
            st.warning(f"{len(d.images_deleted)} image(s) deleted in CVAT: {', '.join(d.images_deleted[:20])}"
                       f"{' …' if len(d.images_deleted) > 20 else ''}. The new version leaves them out, with their "
                       f"{d.annotations_of_deleted} annotation(s).")
        if d.images_not_matched:
            st.warning(f"{len(d.images_not_matched)} CVAT frame(s) match no image: {', '.join(d.images_not_matched[:20])}")
        if d.images_missing:
            st.warning(f"{len(d.images_missing)} exported image(s) are gone from CVAT: {', '.join(d.images_missing[:20])}")
        if d.frames_resized:
            st.info(f"{d.frames_resized} frame(s) have another size in CVAT (it applied their EXIF orientation); "
                    "our sizes are kept.")
        if d.changes:
            st.dataframe(pd.DataFrame([{"image": c.file_name, "change": c.change, "class": c.category,
                                        "detail": c.detail} for c in d.changes[:MAX_CHANGES]]), hide_index=True)
            if len(d.changes) > MAX_CHANGES:
                st.caption(f"… and {len(d.changes) - MAX_CHANGES} more change(s): `dsgen cvat pull … --dry-run --all` "
                           "lists every one.")
        unchanged_ok = True
        if d.is_zero:
            st.success("Nothing changed: CVAT has the annotations as they were exported, so no new version is "
                       "needed.")
            unchanged_ok = st.checkbox("Create an identical version anyway")
        if st.button(f"Create new version of {preview.group} / {preview.split}", type="primary",
                     disabled=not unchanged_ok):
            if started := call("commit_pull", preview.pull_id, even_if_unchanged=d.is_zero):
                with st.spinner("Writing the new version …"):
                    deadline = time.monotonic() + 120
                    while (job := call("get_job", started.job_id)) and not job.finished and time.monotonic() < deadline:
                        time.sleep(0.3)
                if job and job.status == "SUCCEEDED":
                    st.success(f"Version {preview.group} / {preview.split} v{started.version} is READY.")
                    del st.session_state[PREVIEW_KEY]
                elif job:
                    st.error(f"Pull {job.status}: {job.error or job.stage}")

run_caption()
