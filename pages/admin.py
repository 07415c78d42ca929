"""Admin: users (create, disable, reset password), organizations and import roots. Site admins only (checked
in the core)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages._common import FAILED, call, current_actor, fmt_time, run_caption

st.title("🛡️ Admin")
if not current_actor().is_admin:
    st.error("Only site admins may open this page.")
    st.stop()

users_tab, orgs_tab, roots_tab = st.tabs(["Users", "Organizations", "Import roots"])

with users_tab:
    users = call("list_users")
    if users is not FAILED:
        st.dataframe(pd.DataFrame([{
            "username": u.username, "e-mail": u.email or "", "admin": u.is_admin, "active": u.is_active,
            "organizations": ", ".join(u.organizations), "created": fmt_time(u.created_at),
        } for u in users]), hide_index=True, width="stretch")
    st.subheader("Create a user")
    with st.form("create_user", clear_on_submit=True):
        c1, c2 = st.columns(2)
        new_name = c1.text_input("Username")
        new_mail = c2.text_input("E-mail (optional)")
        new_admin = st.checkbox("Site admin")
        created = st.form_submit_button("Create user", type="primary")
    if created:
        result = call("create_user", new_name, email=new_mail or None, is_admin=new_admin)
        if result is not FAILED:
            st.success(f"Created **{result[0].username}**. One-time password (shown once, give it to them): "
                       f"`{result[1]}`")
    if users is not FAILED and users:
        st.subheader("Change a user")
        names = [u.username for u in users]
        c1, c2, c3 = st.columns([2, 1, 1])
        who = c1.selectbox("User", names, key="admin_user_pick")
        target = next(u for u in users if u.username == who)
        if c2.button("Enable" if not target.is_active else "Disable", key="admin_toggle", width="stretch"):
            if call("set_user_active", who, not target.is_active) is not FAILED:
                st.rerun()
        if c3.button("Reset password", key="admin_reset", width="stretch"):
            pw = call("reset_password", who)
            if pw is not FAILED:
                st.success(f"New one-time password for **{who}** (shown once): `{pw}`")

with orgs_tab:
    orgs = call("list_orgs")
    if orgs is not FAILED:
        if orgs:
            st.dataframe(pd.DataFrame([{"organization": o.name, "members": ", ".join(o.members)} for o in orgs]),
                         hide_index=True, width="stretch")
        else:
            st.info("No organizations yet.")
    with st.form("create_org", clear_on_submit=True):
        org_name = st.text_input("New organization")
        if st.form_submit_button("Create organization") and call("create_org", org_name) is not FAILED:
            st.rerun()
    if orgs is not FAILED and orgs and users is not FAILED:
        c1, c2, c3, c4 = st.columns([2, 2, 1, 1])
        org = c1.selectbox("Organization", [o.name for o in orgs], key="admin_org_pick")
        member = c2.selectbox("User", [u.username for u in users], key="admin_member_pick")
        if c3.button("Add member", width="stretch") and call("add_member", org, member) is not FAILED:
            st.rerun()
        if c4.button("Remove member", width="stretch") and call("remove_member", org, member) is not FAILED:
            st.rerun()

with roots_tab:
    st.caption("Server folders users may import from (and register in place, and use as a CVAT share folder). "
               "A root is open to every logged-in user unless limited to organizations or users. Any other "
               "server path is refused; dsgen's data folder never is importable. Site admins may name any path.")
    roots = call("list_import_roots")
    if roots is not FAILED:
        if roots:
            st.dataframe(pd.DataFrame([{
                "folder": r.path, "open to": "everyone" if r.everyone else ", ".join(
                    [f"org {o}" for o in r.organizations] + [f"user {u}" for u in r.users]),
                "added": fmt_time(r.created_at)} for r in roots]), hide_index=True, width="stretch")
        else:
            st.info("No import roots yet: users can only upload archives.")
    with st.form("add_import_root", clear_on_submit=True):
        root_path = st.text_input("Server folder", placeholder="/nas/exports")
        c1, c2 = st.columns(2)
        root_orgs = c1.multiselect("Only for organizations", [o.name for o in orgs] if orgs is not FAILED else [])
        root_users = c2.multiselect("Only for users", [u.username for u in users] if users is not FAILED else [])
        add_root = st.form_submit_button("Add import root", type="primary",
                                         help="Adding a folder again replaces whom it is open to.")
    if add_root:
        added = call("add_import_root", root_path.strip(), organizations=root_orgs, users=root_users)
        if added is not FAILED:
            st.rerun()
    if roots is not FAILED and roots:
        c1, c2 = st.columns([3, 1])
        doomed = c1.selectbox("Import root", [r.path for r in roots], key="admin_root_pick")
        if c2.button("Remove import root", width="stretch") and call("remove_import_root", doomed) is not FAILED:
            st.rerun()
run_caption()
