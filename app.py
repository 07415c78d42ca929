"""dsgen web app: the entry point. Pages only read widgets, call the facade (dsgen_core.api) and render.

Run with `dsgen serve` (starts a worker too) or `streamlit run server.py` (log-in routes included).
"""

from __future__ import annotations

import logging

import streamlit as st

from pages._common import (
    PAGE_ACCOUNT,
    PAGE_ADMIN,
    PAGE_AUDIT,
    PAGE_DATASET,
    PAGE_DATASETS,
    PAGE_EXPLORE,
    PAGE_IMPORT,
    PAGE_JOBS,
    current_actor,
    get_api,
)


def main() -> None:
    """Check the session, build the navigation the user's role allows and run the selected page."""
    st.set_page_config(page_title="dsgen", page_icon="🗂️", layout="wide")
    try:
        api = get_api()
    except Exception as exc:  # catalog unreachable, bad DSGEN_HOME, ...: a message, not a trace
        logging.getLogger("dsgen.ui").exception("opening dsgen failed")
        st.error(f"dsgen could not open its data: {type(exc).__name__}: {exc}")
        st.stop()
    actor = current_actor()  # stops the run with a log-in link when there is no live session

    pages = [
        st.Page(PAGE_DATASETS, title="Datasets", icon="🗂️", url_path="datasets", default=True),
        st.Page(PAGE_IMPORT, title="Import", icon="📥", url_path="import"),
        st.Page(PAGE_DATASET, title="Dataset", icon="🔎", url_path="dataset"),
        st.Page(PAGE_EXPLORE, title="Explore", icon="🖼️", url_path="explore"),
        st.Page("pages/insights.py", title="Insights", icon="📊", url_path="insights"),
        st.Page("pages/sql.py", title="SQL", icon="🧮", url_path="sql"),
        st.Page(PAGE_JOBS, title="Jobs", icon="⚙️", url_path="jobs"),
        st.Page("pages/cvat.py", title="CVAT", icon="🔁", url_path="cvat"),
        st.Page(PAGE_AUDIT, title="Audit log", icon="📜", url_path="audit"),
        st.Page(PAGE_ACCOUNT, title="Account", icon="👤", url_path="account"),
    ]
    if actor.is_admin:  # the core refuses admin calls anyway; this only keeps the menu honest
        pages.append(st.Page(PAGE_ADMIN, title="Admin", icon="🛡️", url_path="admin"))
    page = st.navigation(pages)

    with st.sidebar:
        role = "admin" if actor.is_admin else "user"
        st.caption(f"Signed in as **{actor.username}** ({role})  \nData folder: `{api.app.settings.home}`")
        st.markdown('<a href="/auth/logout" target="_self">Log out</a>', unsafe_allow_html=True)

    page.run()


# Streamlit runs this file as "__main__"; a process pool's child re-imports it as
# "__mp_main__" and must not start a UI there.
if __name__ == "__main__":
    main()
