"""SQL: read-only DuckDB queries over the versions you may read (tables images, annotations, categories,
tags, metadata, versions), sandboxed; results as a table with CSV and Parquet downloads."""

from __future__ import annotations

import streamlit as st

from dsgen_core.facade_insights import MAX_SQL_VERSIONS
from pages._common import FAILED, call, get_api, run_caption

EXAMPLE = ("SELECT c.name AS category, count(*) AS instances, avg(a.bbox_w * a.bbox_h) AS mean_box_area\n"
           "FROM annotations a JOIN categories c USING (version_id, category_id)\n"
           "GROUP BY ALL ORDER BY instances DESC")


def page() -> None:
    st.title("🧮 SQL")
    st.caption("DuckDB SQL, read-only: one SELECT per run; no files, network or extensions; rows of the chosen "
               "versions only (join on version_id). Time and row limits apply.")
    rows = call("sql_versions")
    if rows is FAILED:
        return
    ready = {r["version_id"]: f"{r['group_name']} · {r['split']} v{r['version']} · #{r['version_id']}"
             for r in rows if r["status"] == "READY"}
    if not ready:
        st.info("No READY version you may read yet.")
        run_caption()
        return
    saved = call("list_queries") or []
    if saved:
        by_name = {q["name"]: q for q in saved}
        c1, c2 = st.columns([4, 1])
        name = c1.selectbox("Saved query", ["—", *by_name], key="sql_saved")
        if c2.button("Load", disabled=name == "—"):
            st.session_state["sql_text"] = by_name[name]["sql"]
            st.session_state["sql_versions"] = [v for v in by_name[name]["version_ids"] if v in ready]
            st.rerun()
    default = list(ready)[-MAX_SQL_VERSIONS:] if "sql_versions" not in st.session_state else None
    chosen = st.multiselect("Versions", list(ready), default=default, format_func=ready.get, key="sql_versions",
                            max_selections=MAX_SQL_VERSIONS)
    sql = st.text_area("Query", value=EXAMPLE, height=160, key="sql_text")
    c1, c2, c3 = st.columns([1, 1, 3])
    limit = c1.number_input("Row limit", 1, 1_000_000, 10_000, key="sql_limit")
    timeout = c2.number_input("Time limit (s)", 1, 120, 10, key="sql_timeout")
    run = c3.button("Run", type="primary")
    if run:
        st.session_state["sql_result"] = call("run_sql", sql, chosen or None, row_limit=int(limit),
                                              timeout=float(timeout))
    result = st.session_state.get("sql_result")
    if result:
        more = f" (first {result.row_limit:,}; more rows were cut off)" if result.truncated else ""
        st.caption(f"{result.table.num_rows:,} rows{more} · {result.seconds * 1000:.0f} ms")
        st.dataframe(result.table.to_pandas(), hide_index=True, width="stretch")
        api = get_api()
        d1, d2 = st.columns(2)
        d1.download_button("Download CSV", api.sql_result_csv(result), file_name="query.csv", mime="text/csv")
        d2.download_button("Download Parquet", api.sql_result_parquet(result), file_name="query.parquet",
                           mime="application/octet-stream")
    with st.expander("Save this query"):
        name = st.text_input("Name", key="sql_save_name")
        if st.button("Save query", disabled=not name) and call("save_query", name, sql, chosen) is not FAILED:
            st.success(f"Saved “{name}”.")
    with st.expander("Versions you may read (the `versions` table)"):
        st.dataframe(rows, hide_index=True, width="stretch")


page()
run_caption()
