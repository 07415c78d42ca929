"""Account: who you are, your organizations, and changing your password."""

from __future__ import annotations

import streamlit as st

from pages._common import FAILED, call, current_token, fmt_time, run_caption

st.title("👤 Account")
me = call("whoami")
if me is not FAILED:
    c1, c2, c3 = st.columns(3)
    c1.metric("Username", me.username)
    c2.metric("Role", "site admin" if me.is_admin else "user")
    c3.metric("Member since", fmt_time(me.created_at))
    st.caption(f"E-mail: {me.email or '—'} · Organizations: {', '.join(me.organizations) or 'none'}")

st.subheader("Change password")
with st.form("change_password", clear_on_submit=True):
    old = st.text_input("Current password", type="password")
    new = st.text_input("New password (at least 10 characters)", type="password")
    again = st.text_input("New password again", type="password")
    submitted = st.form_submit_button("Change password", type="primary")
if submitted:
    if new != again:
        st.error("The two new passwords differ.")
    elif call("change_password", old, new, keep_token=current_token()) is not FAILED:
        st.success("Password changed. Your other sessions and CLI tokens were logged out.")
run_caption()
