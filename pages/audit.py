"""Audit log: who did what to which dataset and when; filterable, downloadable as CSV."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pandas as pd
import streamlit as st

from pages._common import FAILED, call, current_actor, fmt_time, run_caption

st.title("📜 Audit log")
actor = current_actor()
st.caption("Site admins see everything; others see their own actions and those on groups they own.")

c1, c2, c3, c4 = st.columns(4)
username = c1.text_input("User", disabled=not actor.is_admin, placeholder="any")
action = c2.text_input("Action starts with", placeholder="e.g. group. or login")
target_type = c3.selectbox("Target", ["any", "group", "version", "user", "org", "job"])
days = c4.number_input("Last days", min_value=1, max_value=3650, value=30)
filters = {
    "username": username.strip() or None,
    "action": action.strip() or None,
    "target_type": None if target_type == "any" else target_type,
    "since": datetime.combine(datetime.now().date() - timedelta(days=int(days)), time.min),
}
entries = call("list_audit", limit=1000, **filters)
if entries is not FAILED:
    if not entries:
        st.info("No audit entries match these filters.")
    else:
        frame = pd.DataFrame([{
            "id": e.id, "at": fmt_time(e.at), "user": e.username or "", "action": e.action,
            "target": f"{e.target_type or ''} {e.target_id if e.target_id is not None else ''}".strip(),
            "details": "" if e.details is None else str(e.details),
        } for e in entries])
        st.caption(f"{len(entries):,} entr{'y' if len(entries) == 1 else 'ies'} (newest first, at most 1,000 shown)")
        st.dataframe(frame, hide_index=True, width="stretch")
        csv_text = call("audit_csv", **filters)
        if csv_text is not FAILED:
            st.download_button("⬇ Download CSV", csv_text, file_name="dsgen-audit.csv", mime="text/csv")
run_caption()
