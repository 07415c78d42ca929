"""Dataset: one version of a group — facts, the group's versions, validation report, classes and samples.

Deep links: `?version=<id>` opens that version; picking another version updates the URL.
"""

from __future__ import annotations

import uuid

import altair as alt
import pandas as pd
import streamlit as st

from pages._common import (
    FAILED,
    PAGE_IMPORT,
    badge,
    call,
    current_actor,
    fmt_int,
    fmt_time,
    get_api,
    render_report,
    run_caption,
    sample_tile,
)

SAMPLES = 12
GRID_COLS = 4
SEEN_KEY = "_ds_qp_seen"  # the ?version= value already applied to the selectboxes


def version_label(v) -> str:  # noqa: ANN001
    return f"{v.split} v{v.version} · {badge(v.status)} · #{v.id}"


def export_callable(version_id: int):  # noqa: ANN201
    """A deferred download: export the version to a temp file only when the button is clicked."""
    api, actor = get_api(), current_actor()

    def make() -> bytes:
        out = api.app.settings.tmp_root / "exports" / f"{uuid.uuid4().hex}.json"
        try:
            api.export_coco(actor, version_id, out)
            return out.read_bytes()
        finally:
            out.unlink(missing_ok=True)

    return make


def page() -> None:
    st.title("🔎 Dataset")
    groups = call("list_groups")
    if groups is FAILED:
        return
    if not groups:
        st.info("No datasets yet. Import one on the **Import** page, or run `dsgen demo` in a terminal.")
        st.page_link(PAGE_IMPORT, label="Import a dataset", icon="📥")
        return
    by_name = {g.name: g for g in groups}
    where = {v.id: g for g in groups for v in g.versions}

    # ?version=<id> picks group and version, once per new value (and again after navigating away).
    qp = st.query_params.get("version")
    if qp and (qp != st.session_state.get(SEEN_KEY) or "ds_version" not in st.session_state):
        st.session_state[SEEN_KEY] = qp
        try:
            wanted = int(qp)
        except ValueError:
            wanted = -1
        if wanted in where:
            st.session_state["ds_group"] = where[wanted].name
            st.session_state["ds_version"] = wanted
        else:
            call("get_version", wanted)  # shows why (not found / no permission)

    if st.session_state.get("ds_group") not in by_name:
        st.session_state["ds_group"] = groups[-1].name
    c_group, c_version = st.columns([1, 1])
    group_name = c_group.selectbox("Group", list(by_name), key="ds_group")
    g = by_name[group_name]
    if not g.versions:
        st.info(f"Group **{g.name}** has no versions yet.")
        return
    versions = sorted(g.versions, key=lambda v: v.id, reverse=True)
    ids = [v.id for v in versions]
    labels = {v.id: version_label(v) for v in versions}
    if st.session_state.get("ds_version") not in ids:
        ready = [v.id for v in versions if v.status == "READY"]
        st.session_state["ds_version"] = ready[0] if ready else ids[0]
    vid = c_version.selectbox("Version", ids, format_func=lambda i: labels[i], key="ds_version")
    st.query_params["version"] = str(vid)
    st.session_state[SEEN_KEY] = str(vid)

    v = call("get_version", vid)
    if v is FAILED:
        return

    # ----- facts ------------------------------------------------------------------------------
    st.header(f"{g.name} / {v.split} v{v.version}")
    m = st.columns(5)
    m[0].metric("Status", badge(v.status))
    m[1].metric("Images", fmt_int(v.num_images))
    m[2].metric("Annotations", fmt_int(v.num_annotations))
    m[3].metric("Classes", fmt_int(v.num_categories))
    m[4].metric("Versions in group", len(g.versions))
    if v.error:
        st.error(f"Error: {v.error}")
    facts = {
        "Group": g.name,
        "Type": g.dataset_type,
        "Modality": g.modality,
        "Task types": ", ".join(g.task_types) or "—",
        "Format": g.format,
        "Owner": g.owner or "—",
        "Visibility": g.visibility,
        "Split": v.split,
        "Version": f"{v.version} (id {v.id})",
        "In place": "yes — images referenced, not copied" if v.in_place else "no — images in dsgen storage",
        "Created": fmt_time(v.created_at),
        "Ready": fmt_time(v.ready_at) or "—",
    }
    if g.description:
        st.caption(g.description)
    with st.container(border=True):
        cols = st.columns(4)
        for i, (k, val) in enumerate(facts.items()):
            cols[i % 4].markdown(f":gray[{k}]  \n**{val}**")
        st.markdown(f":gray[Content hash]  \n`{v.content_hash or '—'}`")
        st.markdown(f":gray[Source]  \n`{v.source_uri or '—'}`")
        if v.parents:
            st.markdown(":gray[Parents]  \n" + ", ".join(f"#{p}" for p in v.parents))

    # ----- versions of the group -------------------------------------------------------------
    st.subheader("Versions of the group")
    st.dataframe(
        pd.DataFrame([{
            "id": x.id, "split": x.split, "version": x.version, "status": badge(x.status),
            "images": x.num_images, "annotations": x.num_annotations, "classes": x.num_categories,
            "created": x.created_at, "ready": x.ready_at, "content hash": (x.content_hash or "")[:16],
            "in place": x.in_place,
        } for x in versions]),
        hide_index=True, width="stretch", key="ds_versions",
        column_config={
            "created": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm"),
            "ready": st.column_config.DatetimeColumn("ready", format="YYYY-MM-DD HH:mm"),
        },
    )

    # ----- validation ------------------------------------------------------------------------
    with st.expander("Validation report", expanded=bool(v.validation_report.findings)):
        render_report(v.validation_report)

    if v.status != "READY":
        st.info(f"This version is {badge(v.status)}: classes, samples and export appear once it is READY.")
        return

    # ----- classes ---------------------------------------------------------------------------
    st.subheader("Classes")
    counts = call("class_counts", vid)
    if counts is not FAILED:
        if not counts:
            st.caption("No classes.")
        else:
            cdf = pd.DataFrame([{
                "class": c.name, "supercategory": c.supercategory or "", "instances": c.instances,
                "images": c.images, "id": c.category_id,
            } for c in counts])
            c_table, c_chart = st.columns([2, 3])
            c_table.dataframe(cdf, hide_index=True, width="stretch", key="ds_classes",
                              height=min(640, 35 * (len(cdf) + 1) + 3))
            chart = (
                alt.Chart(cdf)
                .mark_bar()
                .encode(
                    x=alt.X("instances:Q", title="instances"),
                    y=alt.Y("class:N", sort="-x", title=None, axis=alt.Axis(labelOverlap=False, labelLimit=160)),
                    color=alt.Color("supercategory:N", legend=alt.Legend(title="supercategory")),
                    tooltip=["class", "supercategory", "instances", "images"],
                )
                .properties(height=max(120, min(640, 35 * (len(cdf) + 1))))
            )
            c_chart.altair_chart(chart, width="stretch")

    # ----- samples ---------------------------------------------------------------------------
    st.subheader("Samples")
    samples = call("sample_images", vid, limit=SAMPLES)
    if samples is not FAILED:
        if not samples:
            st.caption("No images in this version.")
        cols = st.columns(GRID_COLS)
        for i, s in enumerate(samples):
            tile = sample_tile(s)
            col = cols[i % GRID_COLS]
            caption = f"{s.file_name.rsplit('/', 1)[-1]} · {s.width}×{s.height} · {len(s.boxes)} box(es)"
            if tile is None:
                col.caption(f"🖼️ {caption} (no image file available)")
            else:
                col.image(tile, caption=caption, width="stretch")

    # ----- export ----------------------------------------------------------------------------
    st.subheader("Export")
    st.download_button(
        "⬇️ Download COCO JSON", data=export_callable(vid), file_name=f"{g.name}-{v.split}-v{v.version}.json",
        mime="application/json", key=f"ds_download_{vid}",
    )


page()
run_caption()
