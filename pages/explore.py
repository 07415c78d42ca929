"""Explore: search one version with the DSL, browse a tile gallery with overlays, select images, tag
and set metadata in bulk (with undo), open one image, import/export metadata CSV.

The query, sort, page, selection and open image live in the URL (`?v=&q=&sort=&desc=&size=&page=&sel=&img=`),
so a view is shared by link. Selections are image ids kept under a key that includes the query
(STREAMLIT_NOTES: positions outlive a query change and would hit the wrong images).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from dsgen_core.curation.edits import BulkEdit, ConfirmationRequired
from dsgen_core.errors import DsgenError
from dsgen_core.query import QueryError
from pages._common import FAILED, call, current_actor, fmt_int, get_api, run_caption
from pages._explore_state import (
    MAX_URL_IDS,
    add_term,
    caret_line,
    decode_ids,
    encode_ids,
    literal,
    parse_value,
    quote_value,
)
from pages._gallery import OVERLAY_KINDS, build_payload, gallery

log = logging.getLogger("dsgen.ui")
PAGE_SIZES = (50, 100, 150, 200)
BASE_SORTS = ("file_name", "width", "height", "boxes")
URL_KEYS = ("v", "q", "sort", "desc", "size", "page", "sel", "img", "pos")
HELP = """**Query language** — terms are ANDed; `OR`, `NOT`/`-` and `( )` combine them.

| example | finds images… |
|---|---|
| `category:person` | with at least one person |
| `category:car>=3 width>=1280` | with ≥ 3 cars, at least 1280 px wide |
| `tag:night -tag:reviewed` | tagged night, not tagged reviewed |
| `metadata.weather:rain` | whose metadata key weather is "rain" |
| `metadata.speed>40`, `has:metadata.speed` | numeric metadata; the key at all |
| `file:*night*` | whose path contains night |
| `bbox.area<1024` | with a small box |
| `ann:(category:car attr.occluded:true)` | with one occluded car |
| `tags:none` / `categories:none` | without tags / without annotations |

Click a facet in the sidebar to add it to the query. Full reference: docs/query-dsl.md."""


# ----- facade calls ------------------------------------------------------------------------------

def xcall(method: str, *args: Any, **kwargs: Any) -> Any:
    """`call` for the Explore calls (kept as one name for this page's facade calls)."""
    return call(method, *args, **kwargs)


@st.cache_resource(show_spinner=False, max_entries=64)
def _facets(user_id: int, version_id: int, seq: int, query: str) -> Any:
    """Facets keyed on (user, version, curation sequence, query): recomputed only when one changes.

    The user id is in the key so one user's rights never serve another; the call still checks them."""
    return get_api().search_facets(current_actor(), version_id, query)


# ----- URL <-> session state ---------------------------------------------------------------------

def _apply_url(versions: dict[int, str]) -> None:
    """A new link (or first load): copy its parameters into the widgets' state, once per new URL."""
    url = {k: st.query_params.get(k) for k in URL_KEYS if st.query_params.get(k) is not None}
    if url == st.session_state.get("_ex_url"):
        return
    st.session_state["_ex_url"] = url
    try:
        vid = int(url.get("v", ""))
    except ValueError:
        vid = None
    if vid in versions:
        st.session_state["ex_v"] = vid
    elif "v" in url:
        st.warning(f"Version {url['v']!r} of the link is not a READY version you can read; showing another one.")
    st.session_state["ex_q"] = url.get("q", "")
    if "sort" in url:
        st.session_state["ex_sort"] = url["sort"]
    st.session_state["ex_desc"] = url.get("desc") == "1"
    if url.get("size", "").isdigit() and int(url["size"]) in PAGE_SIZES:
        st.session_state["ex_size"] = int(url["size"])
    st.session_state["_ex_want_page"] = int(url["page"]) if url.get("page", "").isdigit() else 1
    st.session_state["ex_img"] = int(url["img"]) if url.get("img", "").isdigit() else None
    st.session_state["ex_pos"] = int(url["pos"]) if url.get("pos", "").isdigit() else None
    if vid in versions and "sel" in url:
        sel = _selection(vid, url.get("q", ""))
        sel["all"] = url["sel"] == "all"
        sel["ids"] = set() if sel["all"] else decode_ids(url["sel"])


def _write_url(state: dict[str, str]) -> None:
    clean = {k: v for k, v in state.items() if v not in ("", None)}
    if clean != {k: st.query_params.get(k) for k in URL_KEYS if st.query_params.get(k) is not None}:
        st.query_params.from_dict(clean)
    st.session_state["_ex_url"] = clean


def _selection(vid: int, query: str) -> dict[str, Any]:
    """The selection of (version, query): {'all': bool, 'ids': set, 'last': id}; a new query starts empty."""
    key = f"ex_sel:{vid}:{query.strip()}"
    if key not in st.session_state:
        st.session_state[key] = {"all": False, "ids": set(), "last": None}
    return st.session_state[key]


def _flash(kind: str, text: str) -> None:
    st.session_state["_ex_flash"] = (kind, text)


# ----- callbacks (run before the next script run) --------------------------------------------------

def _on_toggle() -> None:
    ev = (st.session_state.get("ex_gallery") or {}).get("toggle")
    ctx = st.session_state.get("_ex_ctx")
    if not ev or not ctx:
        return
    sel = _selection(ctx["v"], ctx["q"])
    iid = int(ev["id"])
    if sel["all"]:
        _flash("warning", "All matching images are selected: clear the selection to pick single images.")
        return
    page_ids: list[int] = ctx["ids"]
    if ev.get("shift") and sel["last"] in page_ids and iid in page_ids:
        a, b = sorted((page_ids.index(sel["last"]), page_ids.index(iid)))
        sel["ids"].update(page_ids[a:b + 1])
    elif iid in sel["ids"]:
        sel["ids"].discard(iid)
    else:
        sel["ids"].add(iid)
    sel["last"] = iid


def _on_open() -> None:
    ev = (st.session_state.get("ex_gallery") or {}).get("open")
    ctx = st.session_state.get("_ex_ctx")
    if ev and ctx and int(ev["id"]) in ctx["ids"]:
        st.session_state["ex_img"] = int(ev["id"])
        st.session_state["ex_pos"] = ctx["offset"] + ctx["ids"].index(int(ev["id"]))


def _add_to_query(term: str) -> None:
    st.session_state["ex_q"] = add_term(st.session_state.get("ex_q", ""), term)
    st.session_state["ex_img"] = None


# ----- sections ------------------------------------------------------------------------------------

def _facet_sidebar(facets: Any) -> None:
    with st.sidebar:
        st.subheader("Facets")
        st.caption(f"over the {fmt_int(facets.total)} matching images · click to add to the query")
        with st.expander(f"Categories ({len(facets.categories)})", expanded=True):
            for c in facets.categories:
                st.button(f"{c.name} · {c.images:,} img · {c.instances:,}", key=f"fc:{c.name}", type="tertiary",
                          on_click=_add_to_query, args=(f"category:{quote_value(c.name)}",))
        with st.expander(f"Tags ({len(facets.tags)})", expanded=bool(facets.tags)):
            if not facets.tags:
                st.caption("no tags in this result")
            for tag, n in facets.tags:
                st.button(f"🏷️ {tag} · {n:,}", key=f"ft:{tag}", type="tertiary",
                          on_click=_add_to_query, args=(f"tag:{quote_value(tag)}",))
        with st.expander(f"Metadata ({len(facets.metadata)})", expanded=bool(facets.metadata)):
            if not facets.metadata:
                st.caption("no metadata in this result")
            for m in facets.metadata:
                st.button(f"**{m.key}** · {m.images:,}", key=f"fk:{m.key}", type="tertiary",
                          on_click=_add_to_query, args=(f"has:metadata.{m.key}",))
                for value, n in m.top_values:
                    st.button(f"  {value} · {n:,}", key=f"fv:{m.key}:{value!r}", type="tertiary",
                              on_click=_add_to_query, args=(f"metadata.{m.key}:{literal(value)}",))


def _bulk_panel(vid: int, query: str, total: int, page_ids: list[int]) -> None:
    """Selection buttons, the bulk edit form and Undo (right-hand side panel)."""
    sel = _selection(vid, query)
    count = total if sel["all"] else len(sel["ids"])
    st.markdown(f"**Selected: {count:,}**" + (" (all matching)" if sel["all"] else ""))
    b1, b2 = st.columns([3, 2])
    if b1.button("Select page", key="ex_sel_page", width="stretch"):
        sel["all"] = False
        sel["ids"].update(page_ids)
        st.rerun()
    if b2.button("Clear", key="ex_sel_clear", width="stretch"):
        sel.update(all=False, ids=set(), last=None)
        st.rerun()
    if st.button(f"Select all {total:,} matching", key="ex_sel_all", width="stretch"):
        sel.update(all=True, ids=set())
        st.rerun()

    st.markdown("**Bulk edit**")
    op = st.selectbox("Operation", ["Add tag", "Remove tag", "Set key", "Delete key"], key="ex_op")
    if op in ("Add tag", "Remove tag"):
        name = st.text_input("Tag", key="ex_tag")
        edit: Callable[[], BulkEdit] = (lambda: BulkEdit.add_tag(name.strip())) if op == "Add tag" else \
            (lambda: BulkEdit.remove_tag(name.strip()))
        ready = bool(name.strip())
    else:
        key = st.text_input("Key", key="ex_key")
        value = st.text_input("Value", key="ex_value", disabled=op == "Delete key",
                              help="true/false → boolean, a number → number, anything else → text")
        edit = (lambda: BulkEdit.set_key(key.strip(), parse_value(value))) if op == "Set key" else \
            (lambda: BulkEdit.delete_key(key.strip()))
        ready = bool(key.strip()) and (op == "Delete key" or value != "")
    if st.button(f"Apply to {count:,} images", key="ex_apply", type="primary", width="stretch",
                 disabled=not (ready and count)):
        _run_bulk(vid, query, sel, edit, confirm=False)
    pending = st.session_state.get("_ex_pending")
    if pending and pending["v"] == vid and pending["q"] == query:
        st.warning(f"This changes **{pending['count']:,}** images. Are you sure?")
        c1, c2 = st.columns(2)
        if c1.button("Confirm", key="ex_confirm", type="primary", width="stretch"):
            st.session_state.pop("_ex_pending", None)
            _run_bulk(vid, query, sel, pending["edit"], confirm=True)
        if c2.button("Cancel", key="ex_cancel", width="stretch"):
            st.session_state.pop("_ex_pending", None)
            st.rerun()
    st.divider()
    if st.button("↩️ Undo my last edit", key="ex_undo", width="stretch"):
        res = call("undo_last", vid)
        if res is not FAILED:
            _flash("success", f"Undid {res.kind}: {res.restored:,} rows restored"
                   + (f", {res.skipped:,} changed since by others kept" if res.skipped else "") + ".")
            st.rerun()


def _run_bulk(vid: int, query: str, sel: dict[str, Any], edit: Callable[[], BulkEdit] | BulkEdit,
              confirm: bool) -> None:
    api = get_api()
    try:
        e = edit() if callable(edit) else edit
        target = {"query": query} if sel["all"] else {"image_ids": sorted(sel["ids"])}
        res = api.bulk_edit(current_actor(), vid, e, confirm=confirm, **target)
    except ConfirmationRequired as exc:
        st.session_state["_ex_pending"] = {"v": vid, "q": query, "count": exc.count, "edit": e}
        st.rerun()
    except DsgenError as exc:
        st.error(str(exc))
        return
    _flash("success", f"{e.describe().get('op', 'edit').replace('_', ' ')}: {res.changed:,} changes "
                      f"on {res.images:,} images.")
    st.rerun()


def _csv_section(vid: int) -> None:
    with st.expander("Metadata CSV (import / export)"):
        st.caption("Long `file_name,key,value[,kind]` or wide `file_name,<key>,…`; one undoable edit.")
        up = st.file_uploader("CSV file", type=["csv"], key="ex_csv_up")
        if up is not None and st.button("Import CSV", key="ex_csv_import"):
            rep = call("import_metadata_csv", vid, up.getvalue())
            if rep is not FAILED:
                st.success(f"{rep.matched_rows:,} of {rep.rows:,} rows matched {rep.images:,} images: "
                           f"{rep.values_changed:,} values and {rep.tags_changed:,} tags changed.")
                if rep.unmatched or rep.ambiguous:
                    st.warning(f"{len(rep.unmatched):,} rows match no image, {len(rep.ambiguous):,} are ambiguous.")
                    st.dataframe(pd.DataFrame(
                        [{"line": ln, "file_name": f, "problem": "no such image"} for ln, f in rep.unmatched]
                        + [{"line": ln, "file_name": f, "problem": "ambiguous"} for ln, f in rep.ambiguous]),
                        hide_index=True)
        api, actor = get_api(), current_actor()

        def export() -> bytes:
            out = api.app.settings.tmp_root / "exports" / f"{uuid.uuid4().hex}.csv"
            out.parent.mkdir(parents=True, exist_ok=True)
            try:
                api.export_curation_csv(actor, vid, out)
                return out.read_bytes()
            finally:
                out.unlink(missing_ok=True)

        st.download_button("⬇️ Download tags + metadata CSV", data=export, file_name=f"curation_v{vid}.csv",
                           mime="text/csv", key="ex_csv_dl")


def _overlay_controls(categories: list[str]) -> tuple[list[str], list[str]]:
    """Overlay kinds to draw and classes to hide: the browser redraws the SVG, images are not re-sent."""
    c1, c2 = st.columns([1, 2], vertical_alignment="bottom")
    show = c1.pills("Overlays", list(OVERLAY_KINDS), selection_mode="multi", default=list(OVERLAY_KINDS),
                    key="ex_show")
    hidden = c2.multiselect("Hide classes", categories, key="ex_hide", placeholder="all classes shown")
    return list(show or []), list(hidden)


def _detail(vid: int, query: str, order: str, desc: bool, total: int, show: list[str], hidden: list[str]) -> None:
    iid, pos = st.session_state["ex_img"], st.session_state.get("ex_pos")
    d = xcall("image_detail", vid, iid)
    if d is FAILED:
        st.session_state["ex_img"] = None
        return
    nav = st.columns([1, 1, 1, 5])
    if nav[0].button("← Gallery", key="ex_back"):
        st.session_state["ex_img"] = None
        st.rerun()
    for col, step, label in ((nav[1], -1, "◀ Prev"), (nav[2], 1, "Next ▶")):
        target = None if pos is None else pos + step
        if col.button(label, key=f"ex_nav{step}", disabled=target is None or not 0 <= target < total):
            page = call("search_images", vid, query, order, desc, 1, target)
            if page is not FAILED and page.image_ids:
                st.session_state["ex_img"], st.session_state["ex_pos"] = page.image_ids[0], target
                st.rerun()
    where = f" · {pos + 1:,} of {total:,}" if pos is not None else ""
    nav[3].markdown(f"**{d.file_name}** · {d.width}×{d.height}{where} · id {d.image_id}")
    ov = xcall("page_overlays", vid, [iid])
    if ov is not FAILED:
        gallery(build_payload(ov, vid, (), hidden, show, mode="detail"), key="ex_detail")
    left, right = st.columns([3, 2])
    with left:
        st.markdown(f"**Annotations ({len(d.annotations)})**")
        st.dataframe(pd.DataFrame([{
            "id": a.annotation_id, "class": a.category, "type": a.annotation_type,
            "bbox": "" if a.bbox is None else ", ".join(f"{v:.1f}" for v in a.bbox),
            "area": a.area, "crowd": a.iscrowd, "attributes": ", ".join(f"{k}={v}" for k, v in a.attributes.items()),
        } for a in d.annotations]), hide_index=True, width="stretch", key=f"ex_anns:{iid}")
    with right:
        _edit_tags(vid, iid, d.tags)
        _edit_metadata(vid, iid, d.metadata)


def _edit_tags(vid: int, iid: int, tags: list[str]) -> None:
    key = f"ex_dtags:{vid}:{iid}"

    def save() -> None:
        new = set(st.session_state.get(key) or [])
        add, rem = sorted(new - set(tags)), sorted(set(tags) - new)
        if add and call("add_tags", vid, iid, add) is not FAILED:
            _flash("success", f"Tagged {', '.join(add)}.")
        if rem and call("remove_tags", vid, iid, rem) is not FAILED:
            _flash("success", f"Removed tag {', '.join(rem)}.")

    st.session_state[key] = tags
    st.multiselect("Tags", tags, key=key, accept_new_options=True, on_change=save,
                   placeholder="type a tag and press Enter")


def _edit_metadata(vid: int, iid: int, meta: dict[str, Any]) -> None:
    st.markdown("**Metadata**")
    rows = pd.DataFrame([{"key": k, "value": literal(v) if not isinstance(v, str) else v} for k, v in meta.items()],
                        columns=["key", "value"])
    edited = st.data_editor(rows, num_rows="dynamic", hide_index=True, width="stretch", key=f"ex_dmeta:{vid}:{iid}",
                            column_config={"key": st.column_config.TextColumn("key", required=True),
                                           "value": st.column_config.TextColumn("value")})
    if st.button("Save metadata", key=f"ex_dmeta_save:{iid}"):
        new = {str(r["key"]).strip(): str(r["value"] or "") for _, r in edited.iterrows() if str(r["key"] or "").strip()}
        old = {k: (literal(v) if not isinstance(v, str) else v) for k, v in meta.items()}
        changed = {k: parse_value(v) for k, v in new.items() if old.get(k) != v}
        gone = sorted(set(old) - set(new))
        ok = True
        if changed:
            ok = call("set_metadata", vid, iid, changed) is not FAILED
        if ok and gone:
            ok = call("delete_metadata", vid, iid, gone) is not FAILED
        if ok:
            _flash("success", f"Metadata saved ({len(changed)} set, {len(gone)} deleted).")
            st.rerun()


# ----- the page ------------------------------------------------------------------------------------

def page() -> None:
    st.title("🖼️ Explore")
    actor = current_actor()
    groups = call("list_groups")
    if groups is FAILED:
        return
    versions = {v.id: f"{g.name} / {v.split} v{v.version} (#{v.id})"
                for g in groups for v in sorted(g.versions, key=lambda x: -x.id) if v.status == "READY"}
    if not versions:
        st.info("No READY dataset version to explore yet. Import one on the **Import** page.")
        run_caption()
        return
    _apply_url(versions)
    if st.session_state.get("ex_v") not in versions:
        st.session_state["ex_v"] = next(iter(versions))
    top = st.columns([2, 5])
    vid = top[0].selectbox("Version", list(versions), format_func=versions.get, key="ex_v")

    keys = call("metadata_keys", vid)
    sorts = list(BASE_SORTS) + [f"metadata.{k}" for k in (keys or [])]
    if st.session_state.get("ex_sort") not in sorts:
        st.session_state["ex_sort"] = "file_name"
    q_col, help_col = top[1].columns([10, 1], vertical_alignment="bottom")
    query = q_col.text_input("Query", key="ex_q", placeholder="e.g. category:person>=3 width>1024 -tag:reviewed",
                             help="Press Enter to search").strip()
    with help_col.popover("?", help="Query help: fields, operators, examples", width="stretch"):
        st.markdown(HELP)
    s1, s2, s3, s4 = st.columns([2, 1, 1, 4], vertical_alignment="bottom")
    order = s1.selectbox("Sort by", sorts, key="ex_sort")
    desc = s2.toggle("Descending", key="ex_desc")
    size = s3.selectbox("Page size", PAGE_SIZES, index=1, key="ex_size")

    want = st.session_state.pop("_ex_want_page", 1)
    pg_key = f"ex_pg:{vid}:{query}:{order}:{desc}:{size}"
    page_no = int(st.session_state.get(pg_key, want))
    try:
        result = get_api().search_images(actor, vid, query, order, desc, size, (page_no - 1) * size)
    except QueryError as exc:
        st.error(f"Query error at position {exc.position}: {exc.message} — expected {exc.expected}"
                 + (f" ({exc.hint})" if exc.hint else ""))
        st.code(caret_line(query, exc.position), language=None)
        _write_url({"v": str(vid), "q": query})
        run_caption()
        return
    except DsgenError as exc:
        st.error(str(exc))
        run_caption()
        return
    pages = max(1, -(-result.total // size))
    if page_no > pages:  # the result shrank (an edit, a new query): show its last page
        page_no = pages
        st.session_state.pop(pg_key, None)
        result = get_api().search_images(actor, vid, query, order, desc, size, (page_no - 1) * size)
    s4.metric("Matching images", fmt_int(result.total), label_visibility="visible")

    try:
        facets = _facets(actor.id, vid, result.seq, query)
    except DsgenError as exc:
        facets = None
        st.sidebar.error(str(exc))
    except Exception as exc:  # noqa: BLE001 - facets are a side panel: the gallery must stay usable
        facets = None
        log.exception("facets of %r failed", query)
        st.sidebar.warning(f"Facets are not available for this query ({type(exc).__name__}).")
    if facets is not None:
        _facet_sidebar(facets)

    flash = st.session_state.pop("_ex_flash", None)
    if flash:
        getattr(st, flash[0])(flash[1])

    sel = _selection(vid, query)
    ov = xcall("page_overlays", vid, result.image_ids)
    categories = ov.categories if ov is not FAILED else []
    main, side = st.columns([4, 1])
    with main:
        show, hidden = _overlay_controls(categories)
        if st.session_state.get("ex_img") is not None:
            _detail(vid, query, order, desc, result.total, show, hidden)
        elif ov is not FAILED:
            st.session_state["_ex_ctx"] = {"v": vid, "q": query, "ids": result.image_ids,
                                           "offset": (page_no - 1) * size}
            picked = result.image_ids if sel["all"] else sel["ids"]
            gallery(build_payload(ov, vid, picked, hidden, show), key="ex_gallery",
                    on_toggle=_on_toggle, on_open=_on_open)
            if pages > 1:
                page_no = st.pagination(pages, default=page_no, key=pg_key, max_visible_pages=9)
            st.caption(f"Page {page_no:,} of {pages:,} · images {(page_no - 1) * size + 1:,}–"
                       f"{min(result.total, page_no * size):,} of {result.total:,}")
    with side:
        _bulk_panel(vid, query, result.total, result.image_ids)
    _csv_section(vid)

    ids_text = "all" if sel["all"] else (encode_ids(sel["ids"]) if 0 < len(sel["ids"]) <= MAX_URL_IDS else "")
    img = st.session_state.get("ex_img")
    pos = st.session_state.get("ex_pos")
    _write_url({"v": str(vid), "q": query, "sort": "" if order == "file_name" else order, "desc": "1" if desc else "",
                "size": "" if size == 100 else str(size), "page": "" if page_no == 1 else str(page_no),
                "sel": ids_text, "img": "" if img is None else str(img),
                "pos": "" if img is None or pos is None else str(pos)})
    run_caption()


page()
