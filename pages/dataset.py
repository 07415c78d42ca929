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
    version_names,
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
            names = version_names(groups)
            st.markdown(":gray[Parents]  \n" + ", ".join(
                f"[{names[p]} (#{p})](/dataset?version={p})" if p in names else f"#{p}" for p in v.parents))

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
    if g.role == "owner":
        access_section(g)


def access_section(g) -> None:  # noqa: ANN001
    """Owners: visibility, grants and deletion. The core checks ownership again on every call."""
    st.subheader("Permissions")
    st.caption(f"Your role: **{g.role}** · viewers read and export; editors also tag, edit and import; "
               "owners also grant, change visibility and delete.")
    c1, c2, c3 = st.columns([1, 1, 1])
    options = ["private", "organization", "public"]
    visibility = c1.selectbox("Visibility", options, index=options.index(g.visibility), key=f"acc_vis_{g.id}")
    orgs = call("list_orgs")
    org_names = [o.name for o in orgs] if orgs is not FAILED else []
    org = None
    if visibility == "organization":
        org = c2.selectbox("Organization", org_names or ["(you belong to none)"], key=f"acc_org_{g.id}",
                           index=org_names.index(g.organization) if g.organization in org_names else 0)
    if c3.button("Apply visibility", key=f"acc_apply_{g.id}", width="stretch"):
        if call("set_visibility", g.id, visibility, org) is not FAILED:
            st.success(f"Visibility is now {visibility}.")
            st.rerun()
    grants = call("list_grants", g.id)
    if grants is not FAILED:
        if grants:
            st.dataframe(pd.DataFrame([{"user": x.username, "role": x.role, "granted by": x.granted_by or "",
                                        "since": fmt_time(x.created_at)} for x in grants]),
                         hide_index=True, width="stretch")
        else:
            st.caption("No one else has been granted access.")
    users = call("list_usernames")  # your organizations' members and this group's grantees
    c1, c2, c3, c4, c5 = st.columns([2, 2, 1, 1, 1])
    listed = c1.selectbox("User", users if users is not FAILED else [], key=f"acc_user_{g.id}")
    typed = c2.text_input("…or exact username / e-mail", key=f"acc_user_typed_{g.id}",
                          help="Someone outside your organizations: type their exact username or e-mail.")
    role = c3.selectbox("Role", ["viewer", "editor", "owner"], key=f"acc_role_{g.id}")
    grant = c4.button("Grant", key=f"acc_grant_{g.id}", width="stretch", type="primary")
    revoke = c5.button("Revoke", key=f"acc_revoke_{g.id}", width="stretch")
    if grant or revoke:
        who = call("find_username", typed) if typed.strip() else listed
        if who and who is not FAILED:
            done = call("grant", g.id, who, role) if grant else call("revoke", g.id, who)
            if done is not FAILED:
                st.rerun()
    with st.expander("Delete a version"):
        live = sorted(g.versions, key=lambda v: v.id, reverse=True)
        pick_v = st.selectbox("Version", [v.id for v in live], key=f"acc_delv_pick_{g.id}",
                              format_func=lambda i: next(version_label(v) for v in live if v.id == i))
        sure = st.checkbox("Yes, delete this version (restorable below)", key=f"acc_delv_ok_{g.id}")
        if st.button("Delete version", key=f"acc_delv_{g.id}", disabled=not sure):
            if call("delete_version", pick_v) is not FAILED:
                st.session_state.pop("ds_version", None)
                st.rerun()
        gone = call("list_deleted_versions", g.id)
        for v in gone if gone is not FAILED else []:
            c1, c2 = st.columns([3, 1])
            c1.write(f"Deleted: {v.split} v{v.version} (id {v.id})")
            if c2.button("Restore", key=f"acc_restore_v_{v.id}") and call("restore_version", v.id) is not FAILED:
                st.rerun()
    with st.expander("Delete this group"):
        st.write(f"Deleting hides **{g.name}** and its {len(g.versions)} version(s) from everyone. It can be "
                 "restored from the Datasets page until an owner purges it; storage is freed only by a purge.")
        typed = st.text_input(f"Type the group name ({g.name}) to confirm", key=f"acc_del_confirm_{g.id}")
        if st.button("Delete group", key=f"acc_del_{g.id}", disabled=typed != g.name):
            if call("delete_group", g.id) is not FAILED:
                st.session_state.pop("ds_group", None)
                st.session_state.pop("ds_version", None)
                st.rerun()


page()
run_caption()
