"""Datasets: every dataset group as a row, with filters and sort; per group the split × version matrix."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages._common import FAILED, PAGE_DATASET, PAGE_IMPORT, badge, call, fmt_time, run_caption

SORT_COLUMNS = {
    "Created": "created",
    "Name": "name",
    "Type": "type",
    "Status": "status",
    "Images": "images",
    "Annotations": "annotations",
    "Classes": "classes",
    "Owner": "owner",
}
MAX_LINKS = 24  # version links per group shown as buttons; the matrix shows them all

st.title("🗂️ Datasets")

groups = call("list_groups")
if groups is FAILED:
    pass
elif not groups:
    st.info(
        "No datasets yet. Import a CVAT export (COCO 1.0 zip or folder) on the **Import** page, "
        "or load a generated demo dataset with `dsgen demo` in a terminal."
    )
    st.page_link(PAGE_IMPORT, label="Import a dataset", icon="📥")
else:
    rows = [
        {
            "name": g.name,
            "type": g.dataset_type,
            "format": g.format,
            "task types": ", ".join(g.task_types),
            "modality": g.modality,
            "status": badge(g.status),
            "images": g.num_images,
            "annotations": g.num_annotations,
            "classes": g.num_categories,
            "versions": len(g.versions),
            "created": g.created_at,
            "owner": g.owner,
            "_status": g.status,
            "_id": g.id,
        }
        for g in groups
    ]
    df = pd.DataFrame(rows)

    c_text, c_type, c_status, c_sort, c_dir = st.columns([3, 2, 2, 2, 1.3])
    text = c_text.text_input("Filter", placeholder="name, owner, task type, format …", key="ds_filter")
    types = c_type.multiselect("Type", sorted(df["type"].unique()), key="ds_types")
    statuses = c_status.multiselect("Status", sorted(df["_status"].unique()), key="ds_statuses")
    sort_label = c_sort.selectbox("Sort by", list(SORT_COLUMNS), key="ds_sort")
    direction = c_dir.radio("Order", ["desc", "asc"], key="ds_dir", horizontal=True)

    view = df
    if text.strip():
        needle = text.strip().lower()
        hay = (view["name"] + " " + view["owner"] + " " + view["task types"] + " " + view["format"] + " "
               + view["modality"] + " " + view["type"]).str.lower()
        view = view[hay.str.contains(needle, regex=False)]
    if types:
        view = view[view["type"].isin(types)]
    if statuses:
        view = view[view["_status"].isin(statuses)]
    sort_col = SORT_COLUMNS[sort_label]
    if sort_col == "status":
        sort_col = "_status"
    view = view.sort_values(sort_col, ascending=direction == "asc", kind="stable",
                            key=(lambda s: s.str.lower()) if view[sort_col].dtype == object else None)

    st.caption(f"{len(view)} of {len(df)} group(s)")
    st.dataframe(
        view.drop(columns=["_status", "_id"]),
        hide_index=True,
        width="stretch",
        column_config={
            "name": st.column_config.TextColumn("Name"),
            "type": "Type",
            "format": "Format",
            "task types": "Task types",
            "modality": "Modality",
            "status": "Status",
            "images": st.column_config.NumberColumn("Images", format="localized"),
            "annotations": st.column_config.NumberColumn("Annotations", format="localized"),
            "classes": st.column_config.NumberColumn("Classes"),
            "versions": st.column_config.NumberColumn("Versions"),
            "created": st.column_config.DatetimeColumn("Created", format="YYYY-MM-DD HH:mm"),
            "owner": "Owner",
        },
        key="ds_table",
    )

    st.subheader("Splits × versions")
    by_id = {g.id: g for g in groups}
    for gid in view["_id"]:
        g = by_id[int(gid)]
        label = (f"**{g.name}** · {g.dataset_type} · {badge(g.status)} · {g.num_images:,} images · "
                 f"{len(g.versions)} version(s)")
        with st.expander(label):
            if not g.versions:
                st.caption("No versions yet.")
                continue
            splits = list(dict.fromkeys(v.split for v in g.versions))
            versions = sorted({v.version for v in g.versions}, key=lambda s: tuple(int(x) for x in s.split(".")))
            matrix = pd.DataFrame("", index=splits, columns=[f"v{v}" for v in versions])
            for v in g.versions:
                matrix.loc[v.split, f"v{v.version}"] = f"{badge(v.status)} · {v.num_images:,} img"
            matrix.index.name = "split"
            st.dataframe(matrix, width="stretch")
            newest_first = sorted(g.versions, key=lambda v: v.id, reverse=True)
            cols = st.columns(4)
            for i, v in enumerate(newest_first[:MAX_LINKS]):
                cols[i % 4].page_link(
                    PAGE_DATASET,
                    label=f"Open {v.split} v{v.version} ({v.status.lower()})",
                    icon="🔎",
                    query_params={"version": str(v.id)},
                )
            if len(newest_first) > MAX_LINKS:
                st.caption(f"{len(newest_first) - MAX_LINKS} older version(s): pick them on the Dataset page.")
            st.caption(f"Created {fmt_time(g.created_at)} by {g.owner or '—'} · visibility {g.visibility}"
                       f" · your role: {g.role}")


def deleted_groups() -> None:
    """Soft-deleted groups the user owns: restore, or purge (frees storage; cannot be undone)."""
    gone = call("list_deleted_groups")
    if gone is FAILED or not gone:
        return
    with st.expander(f"🗑️ Deleted groups ({len(gone)})"):
        for g in gone:
            c1, c2, c3 = st.columns([3, 1, 1])
            c1.write(f"**{g.name}** · deleted {fmt_time(g.deleted_at)} · {len(g.versions)} version(s)")
            if c2.button("Restore", key=f"restore_{g.id}", width="stretch"):
                if call("restore_group", g.id) is not FAILED:
                    st.rerun()
            confirm = c3.checkbox("I understand purge cannot be undone", key=f"purge_ok_{g.id}")
            if c3.button("Purge storage", key=f"purge_{g.id}", disabled=not confirm, width="stretch"):
                result = call("purge_group", g.id)
                if result is not FAILED:
                    st.success(f"Purged {result['versions']} version folder(s) and {result['blobs']} image file(s).")


deleted_groups()
run_caption()
