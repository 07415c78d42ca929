"""Insights: statistics of a DSL subset of a version, or of two subsets side by side; saved views.

Deep links: `?version=<id>&q=<dsl>` opens a subset, `?view=<id>` a saved view. Clicking a bar or a heatmap
cell offers the Explore gallery filtered on it.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from dsgen_core.facade_insights import frame_csv
from dsgen_core.insights import BASIC, Subset
from pages._charts import (
    COUNT_FORMAT,
    PICK,
    SMALL_HEIGHT,
    bar,
    fit,
    heat,
    hist_frame,
    tooltip_columns,
)
from pages._common import FAILED, call, get_api, run_caption


def versions() -> dict[int, str]:
    """READY versions the user may read, newest group first: id → label."""
    groups = call("list_groups")
    if groups is FAILED:
        return {}
    out = {}
    for g in groups:
        for v in g.versions:
            if v.status == "READY":
                out[v.id] = f"{g.name} · {v.split} v{v.version} · #{v.id}"
    return out


def apply_view_link(labels: dict[int, str]) -> None:
    """`?view=` fills the controls once (until the link changes)."""
    view_id = st.query_params.get("view")
    if not view_id or st.session_state.get("_ins_view_seen") == view_id:
        return
    st.session_state["_ins_view_seen"] = view_id
    view = call("get_view", int(view_id)) if view_id.isdigit() else FAILED
    if view is FAILED:
        return
    first = view.subsets[0]
    st.session_state.update({"ins_version": first.version_id, "ins_query": first.query,
                             "ins_charts": list(view.charts), "ins_view_id": view.id,
                             "ins_compare": len(view.subsets) > 1, "ins_bins": view.settings.get("bins", 20),
                             "ins_top": view.settings.get("top", 10)})
    if len(view.subsets) > 1:
        second = view.subsets[1]
        st.session_state.update({"ins_version_b": second.version_id, "ins_query_b": second.query})


def controls(labels: dict[int, str]) -> tuple[list[Subset], list[str], dict[str, Any]]:
    qp_version = st.query_params.get("version")
    if qp_version and qp_version.isdigit() and st.session_state.get("_ins_qp_seen") != qp_version:
        st.session_state["_ins_qp_seen"] = qp_version
        if int(qp_version) in labels:
            st.session_state["ins_version"] = int(qp_version)
            st.session_state["ins_query"] = st.query_params.get("q", "")
        else:
            st.warning(f"Version {qp_version} of the link is not a READY version you can read; showing another one.")
    ids = list(labels)
    c1, c2 = st.columns([2, 3])
    vid = c1.selectbox("Version", ids, format_func=labels.get, key="ins_version")
    query = c2.text_input("Filter (DSL)", key="ins_query", placeholder="e.g. tag:night category:person>=2")
    compare = st.toggle("Compare with another subset", key="ins_compare")
    subsets = [Subset(vid, query, "A" if compare else None)]
    if compare:
        d1, d2 = st.columns([2, 3])
        vid_b = d1.selectbox("Compare version", ids, format_func=labels.get, key="ins_version_b",
                             index=ids.index(vid))
        query_b = d2.text_input("Compare filter (DSL)", key="ins_query_b", placeholder="e.g. NOT tag:night")
        subsets.append(Subset(vid_b, query_b, "B"))
    kinds = get_api().insight_kinds()
    e1, e2, e3 = st.columns([4, 1, 1])
    charts = e1.multiselect("Charts", list(kinds), default=list(BASIC), format_func=kinds.get, key="ins_charts")
    settings = {"bins": e2.number_input("Bins", 2, 200, 20, key="ins_bins"),
                "top": e3.number_input("Top values", 1, 100, 10, key="ins_top")}
    return subsets, charts, settings


# ----- charts ----------------------------------------------------------------------------------


def show(key: str, chart: alt.Chart, frame: pl.DataFrame, insight: str, table: str,
         subsets: dict[str, Subset]) -> None:
    """Draw a chart; a clicked mark turns into an Explore link for its row."""
    event = st.altair_chart(chart, on_select="rerun", selection_mode=PICK, key=key, width="stretch")
    picked = (event or {}).get("selection", {}).get(PICK) or []
    if not picked or "_row" not in picked[0]:
        return
    row = frame.filter(pl.col("_row") == picked[0]["_row"]).to_dicts()
    if not row:
        return
    sub = subsets.get(row[0].get("subset"), next(iter(subsets.values())))
    link = get_api().explore_link(sub.version_id, sub.query, insight, table, row[0])
    if link is None:
        st.caption("This mark has no DSL filter (the query language cannot express it).")
        return
    dsl = link.split("q=", 1)[1]
    from urllib.parse import unquote_plus

    st.markdown(f"🔎 **[Open in Explore]({link})** · `{unquote_plus(dsl)}`")


def downloads(result, key: str) -> None:  # noqa: ANN001
    with st.expander(f"Tables ({len(result.tables)}) · CSV"):
        for name, frame in result.tables.items():
            st.markdown(f"**{name}** · {frame.height:,} rows")
            st.dataframe(frame.to_pandas(), hide_index=True, width="stretch", height=min(300, 36 + 35 * frame.height))
            st.download_button(f"Download {name}.csv", frame_csv(frame), file_name=f"{result.name}-{name}.csv",
                               mime="text/csv", key=f"dl:{key}:{name}")


def per_subset(table: pl.DataFrame, compare: bool, wide: bool, draw_one) -> None:  # noqa: ANN001
    """Heatmaps cannot overlay two subsets: in comparison mode, one per subset (side by side when wide)."""
    if not compare:
        draw_one(table, "")
        return
    labels = table["subset"].unique(maintain_order=True).to_list()
    cols = st.columns(len(labels)) if wide and labels else [st.container() for _ in labels]
    for col, label in zip(cols, labels, strict=True):
        with col:
            draw_one(table.filter(pl.col("subset") == label), label)


def render(result, subsets: dict[str, Subset], key: str, wide: bool = True) -> None:  # noqa: ANN001, C901
    """The charts of one insight result (side-by-side sub-charts only when the column is `wide`)."""
    t = {n: f.with_row_index("_row") for n, f in result.tables.items()}
    compare = len(result.subsets) > 1
    name = result.name

    def draw(table: str, chart: alt.Chart, part: str = "") -> None:
        show(f"{key}:{table}" + (f":{part}" if part else ""), chart, t[table], name, table, subsets)

    def draw_heat(table: str, x: str, y: str, value: str, title: str = "", x_order: list[str] | None = None) -> None:
        per_subset(t[table], compare, wide, lambda part, label: draw(
            table, heat(part, x, y, value, x_order).properties(title=" · ".join(p for p in (title, label) if p)),
            label))

    def halves() -> tuple[Any, Any]:
        return st.columns(2) if wide else (st.container(), st.container())

    if name == "classes":
        st.dataframe(result.tables["summary"].to_pandas(), hide_index=True, width="stretch")
        draw("classes", bar(t["classes"], "category", "instances", compare, horizontal=True))
    elif name == "tags":
        if t["tags"].height:
            draw("tags", bar(t["tags"], "tag", "images", compare, horizontal=True))
        else:
            st.caption("No tags in this subset.")
    elif name == "metadata":
        if not t["coverage"].height:
            st.caption("No metadata in this subset.")
            return
        draw("coverage", bar(t["coverage"], "key", "images", compare, horizontal=True))
        if t["values"].height:
            values = t["values"].with_columns(pl.format("{}={}", "key", "value").alias("key=value"))
            t["values"] = values
            draw("values", bar(values, "key=value", "images", compare, horizontal=True))
        if t["numeric"].height:
            numeric = hist_frame(t["numeric"], "key").with_columns(pl.format("{} {}", "key", "range").alias("key range"))
            t["numeric"] = numeric
            draw("numeric", bar(numeric, "key range", "images", compare, sort=False))
    elif name == "resolution":
        c1, c2 = halves()
        with c1:
            t["width"] = hist_frame(t["width"])
            draw("width", bar(t["width"], "range", "images", compare, sort=False).properties(title="width"))
        with c2:
            t["height"] = hist_frame(t["height"])
            draw("height", bar(t["height"], "range", "images", compare, sort=False).properties(title="height"))
        draw_heat("resolution", "width", "height", "images", "resolution")
        aspect = alt.Chart(t["aspect"].to_pandas()).mark_bar().encode(
            alt.X("aspect:O", axis=alt.Axis(labelAngle=-40, labelOverlap=True)), alt.Y("images:Q"),
            color=alt.Color("subset:N", legend=alt.Legend(orient="top")) if compare else alt.value("#4c78a8"),
            **({"xOffset": "subset:N"} if compare else {}), tooltip=tooltip_columns(t["aspect"]))
        st.altair_chart(fit(aspect, SMALL_HEIGHT).properties(title="aspect ratio (w/h)"), width="stretch")
        if t["file_size"].height:
            t["file_size"] = hist_frame(t["file_size"])
            draw("file_size", bar(t["file_size"], "range", "images", compare, sort=False).properties(title="bytes"))
    elif name == "boxes":
        per_image = t["per_image"].with_columns(pl.col("boxes").alias("_order"))
        t["per_image"] = per_image
        draw("per_image", bar(per_image, "boxes", "images", compare, sort=False).properties(title="boxes per image"))
        buckets = ["small", "medium", "large"]
        sizes = result.tables["sizes"].unpivot(index=["subset", "category"], on=buckets,
                                               variable_name="bucket", value_name="instances").with_row_index("_row")
        t["sizes"] = sizes
        draw_heat("sizes", "bucket", "category", "instances", "COCO size buckets", x_order=buckets)
        c1, c2 = st.columns(2)
        measure = c1.selectbox("Box measure", ["width", "height", "area", "aspect"], key=f"{key}:measure")
        cats = sorted(t["shape"]["category"].unique().to_list())
        cat = c2.selectbox("Class", cats, key=f"{key}:class") if cats else None
        shape = hist_frame(t["shape"].filter((pl.col("measure") == measure) & (pl.col("category") == cat)))
        t["shape"] = shape
        if shape.height:
            draw("shape", bar(shape, "range", "instances", compare, sort=False).properties(title=f"{cat}: {measure}"))

        def centres(part: pl.DataFrame, label: str) -> None:
            chart = alt.Chart(part.to_pandas()).mark_rect().encode(
                alt.X("gx:O", title="centre x (grid cell)"), alt.Y("gy:O", title="centre y"),
                alt.Color("instances:Q", scale=alt.Scale(scheme="greens"), legend=alt.Legend(orient="top", format=COUNT_FORMAT)),
                tooltip=tooltip_columns(part))
            title = " · ".join(p for p in ("object centres", label) if p)
            st.altair_chart(fit(chart, SMALL_HEIGHT).properties(title=title), width="stretch")

        per_subset(t["centres"], compare, wide, centres)
        st.dataframe(result.tables["edges"].to_pandas(), hide_index=True, width="stretch")
    elif name == "attributes":
        if not t["attributes"].height:
            st.caption("No attributes in this subset.")
            return
        attrs = sorted(t["attributes"]["attribute"].unique().to_list())
        attr = st.selectbox("Attribute", attrs, key=f"{key}:attr")
        t["attributes"] = t["attributes"].filter(pl.col("attribute") == attr).drop("_row").with_row_index("_row")
        draw_heat("attributes", "value", "category", "instances")
    elif name == "cross":
        st.dataframe(result.tables["association"].to_pandas(), hide_index=True, width="stretch")
        variables = t["contingency"]["variable"].unique(maintain_order=True).to_list()
        if variables:
            var = st.selectbox("Variable × class", variables, key=f"{key}:var")
            t["contingency"] = t["contingency"].filter(pl.col("variable") == var).drop("_row").with_row_index("_row")
            draw_heat("contingency", "category", "value", "instances")
        draw_heat("cooccurrence", "category_a", "category_b", "images", "class co-occurrence (images)")
    elif name == "issues":
        st.dataframe(result.tables["summary"].to_pandas(), hide_index=True, width="stretch")
    downloads(result, key)


# ----- saved views ------------------------------------------------------------------------------


def views_panel(subsets: list[Subset], charts: list[str], settings: dict[str, Any]) -> None:
    with st.expander("💾 Saved views", expanded=bool(st.session_state.get("ins_view_id"))):
        c1, c2 = st.columns([3, 1])
        name = c1.text_input("View name", key="ins_view_name")
        shared = c2.checkbox("Share", key="ins_view_shared", help="listed for everyone who may read the versions")
        if st.button("Save view", disabled=not charts):
            view = call("create_view", name, subsets, charts, settings, shared)
            if view is not FAILED:
                st.session_state["ins_view_id"] = view.id
                st.success(f"Saved “{view.name}” · link: [{view.link}]({view.link})")
        views = call("list_views")
        if views is FAILED or not views:
            st.caption("No saved views yet.")
            return
        by_id = {v.id: v for v in views}
        current = st.session_state.get("ins_view_id")
        ids = list(by_id)
        pick = st.selectbox("Open view", ids, format_func=lambda i: f"{by_id[i].name} · by {by_id[i].owner}"
                            + (" · shared" if by_id[i].shared else ""),
                            index=ids.index(current) if current in by_id else 0, key="ins_view_pick")
        view = by_id[pick]
        st.markdown(f"Link: [{view.link}]({view.link})")
        b1, b2, b3, b4 = st.columns(4)
        if b1.button("Open", key="ins_open"):
            st.query_params.clear()
            st.query_params["view"] = str(view.id)
            st.session_state.pop("_ins_view_seen", None)
            st.rerun()
        new_name = b2.text_input("Rename to", key="ins_rename", label_visibility="collapsed", placeholder="new name")
        if b3.button("Rename", key="ins_rename_btn", disabled=not new_name) and call("rename_view", view.id, new_name):
            st.rerun()
        if b4.button("Delete", key="ins_delete") and call("delete_view", view.id) is not FAILED:
            st.session_state.pop("ins_view_id", None)
            st.rerun()


def page() -> None:
    st.title("📊 Insights")
    labels = versions()
    if not labels:
        st.info("No READY version you may read yet: import one first.")
        return
    apply_view_link(labels)
    subsets, charts, settings = controls(labels)
    views_panel(subsets, charts, settings)
    by_label = {s.name: s for s in subsets}
    dashboard = len(charts) > 1 and st.session_state.get("ins_view_id") is not None
    cols = st.columns(2) if dashboard else [st.container()]
    for n, name in enumerate(charts):
        result = call("compare_insight", subsets, name, settings)
        if result is FAILED:
            continue
        with cols[n % len(cols)]:
            cached = " · cached" if all(result.cached) else ""
            st.subheader(result.title)
            st.caption(f"{' vs '.join(result.subsets)} · {result.seconds * 1000:.0f} ms{cached}")
            render(result, by_label, f"ins:{name}:{'|'.join(s.name for s in subsets)}", wide=not dashboard)


page()
run_caption()
