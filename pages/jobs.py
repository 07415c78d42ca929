"""Jobs: recent jobs with their progress; refreshes itself while any job is queued or running."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages._common import FAILED, badge, call, current_actor, fmt_time, get_api, guarded, run_caption

LIMIT = 100

api = get_api()
st.title("⚙️ Jobs")


def jobs_frame(jobs) -> pd.DataFrame:  # noqa: ANN001
    return pd.DataFrame([{
        "id": j.id,
        "kind": j.kind,
        "status": badge(j.status),
        "stage": j.stage,
        "progress": j.fraction,
        "done": f"{j.processed:,} / {j.total:,}" if j.total else "",
        "version": j.version_id,
        "created": fmt_time(j.created_at),
        "finished": fmt_time(j.finished_at),
        "error": j.error or "",
    } for j in jobs])


def show_table(jobs) -> None:  # noqa: ANN001
    st.dataframe(
        jobs_frame(jobs), hide_index=True, width="stretch",
        column_config={
            "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent"),
            "version": st.column_config.NumberColumn("version", format="%d"),
            "error": st.column_config.TextColumn("error", width="large"),
        },
    )


def active_ids(jobs) -> set[int]:  # noqa: ANN001
    return {j.id for j in jobs if not j.finished}


@st.fragment(run_every="1s")
def live_table(watching: frozenset[int]) -> None:
    """Re-reads the jobs; once the set of unfinished jobs changes the page reruns (buttons, warnings)."""
    jobs = guarded(lambda: api.list_jobs(current_actor(), limit=LIMIT))
    if jobs is FAILED:
        return
    show_table(jobs)
    if active_ids(jobs) != watching:
        st.rerun(scope="app")


jobs = call("list_jobs", limit=LIMIT)
if jobs is not FAILED:
    workers = api.live_workers()
    st.caption(f"{workers} live worker(s) · showing the {min(len(jobs), LIMIT)} most recent job(s)")
    active = [j for j in jobs if not j.finished]
    if not jobs:
        st.info("No jobs yet. Imports you start on the **Import** page show up here.")
    elif active:
        live_table(frozenset(active_ids(jobs)))
    else:
        show_table(jobs)

    if active:
        if workers == 0 and any(j.status == "QUEUED" for j in active):
            st.warning("⚠️ No worker is running, so queued jobs wait. Start one with `dsgen serve` or `dsgen worker`.")
        c_pick, c_cancel, c_run = st.columns([3, 1, 1], vertical_alignment="bottom")
        pick = c_pick.selectbox(
            "Unfinished job", [j.id for j in active], key="jobs_pick",
            format_func=lambda i: next(f"#{j.id} {j.kind} · {badge(j.status)} · {j.stage}" for j in active if j.id == i),
        )
        if c_cancel.button("✖️ Cancel job", key="jobs_cancel", width="stretch"):
            done = call("cancel_job", pick)
            if done is not FAILED:
                st.rerun()
        picked = next(j for j in active if j.id == pick)
        if workers == 0 and picked.status == "QUEUED" and c_run.button("▶️ Run here", key="jobs_run_here",
                                                                        width="stretch"):
            with st.spinner(f"Running job #{pick} here …"):
                call("run_job_here", pick)
            st.rerun()

    if jobs:
        with st.expander("Job log"):
            log_id = st.selectbox("Job", [j.id for j in jobs], key="jobs_log_pick",
                                  format_func=lambda i: f"#{i}")
            job = next(j for j in jobs if j.id == log_id)
            st.code(job.log[-10000:] or "(empty)", language=None)

run_caption()
