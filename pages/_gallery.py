"""The Explore tile grid: an inline `st.components.v2` component (CSS grid, SVG overlays drawn in the
browser, no npm build, no iframe). Thumbnails go by URL to the authenticated /thumb route, never as
data URIs, so a 100-tile payload stays a few tens of KB (see ../shared/STREAMLIT_NOTES.md).

Clicks come back as trigger values: `toggle` {id, shift} selects, `open` {id} opens the detail view.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import streamlit as st

from dsgen_core.facade_explore import PageOverlays, Tile
from pages._common import class_color

OVERLAY_KINDS = ("boxes", "polygons", "labels")

_CSS = """
:host { display: block; }
.g { display: grid; grid-template-columns: repeat(auto-fill, minmax(var(--tile, 170px), 1fr)); gap: 8px; }
.g.detail { grid-template-columns: 1fr; }
.t { position: relative; border: 2px solid transparent; border-radius: 8px; background: #f0f2f6;
     cursor: pointer; overflow: hidden; user-select: none; }
.t.sel { border-color: #2b59c3; box-shadow: 0 0 0 2px #2b59c355; background: #e4ebfa; }
.box { position: relative; width: 100%; aspect-ratio: 4 / 3; }
.detail .box { aspect-ratio: auto; height: min(70vh, 720px); }
.box img, .box svg { position: absolute; inset: 0; width: 100%; height: 100%; }
.box img { object-fit: contain; }
.cap { font: 12px/1.4 system-ui, sans-serif; color: #31333f; padding: 2px 6px 4px; white-space: nowrap;
       overflow: hidden; text-overflow: ellipsis; }
.chk { position: absolute; top: 6px; left: 6px; width: 18px; height: 18px; border-radius: 4px; z-index: 2;
       background: #ffffffcc; border: 1.5px solid #5b6170; font: bold 13px/16px system-ui; text-align: center;
       color: #fff; }
.sel .chk { background: #2b59c3; border-color: #2b59c3; }
.open { position: absolute; top: 5px; right: 6px; z-index: 2; border: 0; border-radius: 4px; padding: 1px 6px;
        background: #ffffffd9; font: 13px system-ui; cursor: pointer; }
.open:hover { background: #fff; }
.detail .chk, .detail .open { display: none; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 12px; margin: 0 0 8px; font: 12px system-ui, sans-serif; }
.legend span { display: inline-flex; align-items: center; gap: 4px; }
.legend i { width: 11px; height: 11px; border-radius: 2px; display: inline-block; }
.legend .off { opacity: .35; text-decoration: line-through; }
"""

_JS = """
const SVGNS = "http://www.w3.org/2000/svg";

function overlay(svg, tile, d) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const w = tile.w || 1, h = tile.h || 1, cls = d.classes, show = d.show;
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
  const fs = Math.max(w, h) / (d.mode === "detail" ? 60 : 26);
  if (show.polygons) for (const [c, rings] of tile.p || []) {
    const k = cls[c]; if (!k || !k.on) continue;
    for (const r of rings) {
      const pts = []; for (let i = 0; i + 1 < r.length; i += 2) pts.push(r[i] + "," + r[i + 1]);
      const pg = document.createElementNS(SVGNS, "polygon");
      pg.setAttribute("points", pts.join(" "));
      pg.setAttribute("fill", k.color + "40"); pg.setAttribute("stroke", k.color);
      pg.setAttribute("stroke-width", "1.5"); pg.setAttribute("vector-effect", "non-scaling-stroke");
      svg.appendChild(pg);
    }
  }
  for (const [c, x, y, bw, bh] of tile.b || []) {
    const k = cls[c]; if (!k || !k.on) continue;
    if (show.boxes) {
      const r = document.createElementNS(SVGNS, "rect");
      r.setAttribute("x", x); r.setAttribute("y", y); r.setAttribute("width", bw); r.setAttribute("height", bh);
      r.setAttribute("fill", "none"); r.setAttribute("stroke", k.color);
      r.setAttribute("stroke-width", "2"); r.setAttribute("vector-effect", "non-scaling-stroke");
      svg.appendChild(r);
    }
    if (show.labels) {
      const t = document.createElementNS(SVGNS, "text");
      t.setAttribute("x", x + 2); t.setAttribute("y", Math.max(fs, y - fs * 0.25));
      t.setAttribute("font-size", fs); t.setAttribute("font-family", "system-ui, sans-serif");
      t.setAttribute("fill", k.color); t.setAttribute("stroke", "#000"); t.setAttribute("stroke-width", fs / 10);
      t.setAttribute("paint-order", "stroke");
      t.textContent = k.name; svg.appendChild(t);
    }
  }
}

function legend(el, d) {
  el.innerHTML = "";
  for (const k of d.classes) {
    if (!k.used) continue;
    const s = document.createElement("span"); if (!k.on) s.className = "off";
    const i = document.createElement("i"); i.style.background = k.color;
    s.appendChild(i); s.appendChild(document.createTextNode(k.name)); el.appendChild(s);
  }
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  const d = data || { tiles: [], classes: [], show: {}, selected: [] };
  let root = parentElement.querySelector(".root");
  if (!root) {
    root = document.createElement("div"); root.className = "root";
    root.innerHTML = '<div class="legend"></div><div class="g"></div>';
    parentElement.appendChild(root);
  }
  const grid = root.querySelector(".g");
  grid.className = d.mode === "detail" ? "g detail" : "g";
  grid.style.setProperty("--tile", (d.tile || 170) + "px");
  legend(root.querySelector(".legend"), d);
  const sel = new Set(d.selected || []);
  const sig = d.tiles.map((t) => t.u).join("|");
  if (grid.dataset.sig !== sig) {  // new page or order: rebuild; otherwise keep the <img> elements
    grid.dataset.sig = sig; grid.innerHTML = "";
    for (const t of d.tiles) {
      const el = document.createElement("div"); el.className = "t"; el.dataset.id = t.i;
      el.innerHTML = '<div class="box"><img loading="lazy" decoding="async" alt=""><svg></svg></div>'
        + '<span class="chk">✓</span><button class="open" title="Open">⤢</button><div class="cap"></div>';
      el.querySelector("img").src = t.u;
      el.querySelector(".cap").textContent = d.mode === "detail" ? t.n : t.n.split("/").pop();
      el.title = t.n;
      el.onclick = (e) => {
        if (e.target.classList.contains("open")) { setTriggerValue("open", { id: t.i }); return; }
        el.classList.toggle("sel");  // at once; the next run confirms it
        setTriggerValue("toggle", { id: t.i, shift: e.shiftKey });
      };
      grid.appendChild(el);
    }
  }
  const byId = new Map(d.tiles.map((t) => [String(t.i), t]));
  for (const el of grid.children) {
    el.classList.toggle("sel", sel.has(Number(el.dataset.id)));
    overlay(el.querySelector("svg"), byId.get(el.dataset.id), d);
  }
}
"""

_COMPONENT = st.components.v2.component("dsgen_gallery", css=_CSS, js=_JS)


def hex_color(name: str) -> str:
    r, g, b = class_color(name)
    return f"#{r:02x}{g:02x}{b:02x}"


def tile_json(t: Tile, url: str) -> dict[str, Any]:
    return {"i": t.image_id, "n": t.file_name, "w": t.width, "h": t.height, "u": url,
            "b": [list(b) for b in t.boxes], "p": [[c, rings] for c, rings in t.polygons]}


def build_payload(overlays: PageOverlays, version_id: int, selected: Iterable[int] = (),
                  hidden: Iterable[str] = (), show: Iterable[str] = OVERLAY_KINDS, tile_px: int = 170,
                  mode: str = "grid") -> dict[str, Any]:
    """The component's data: tiles by URL (/thumb, or /image in detail mode), class colours, toggles."""
    off, kinds = set(hidden), set(show)
    used = {b[0] for t in overlays.tiles for b in t.boxes} | {p[0] for t in overlays.tiles for p in t.polygons}
    route = "image" if mode == "detail" else "thumb"
    return {
        "mode": mode, "tile": int(tile_px),
        "show": {k: k in kinds for k in OVERLAY_KINDS},
        "classes": [{"name": n, "color": hex_color(n), "on": n not in off, "used": i in used}
                    for i, n in enumerate(overlays.categories)],
        "selected": sorted({int(i) for i in selected} & {t.image_id for t in overlays.tiles}),
        "tiles": [tile_json(t, f"/{route}/{int(version_id)}/{t.image_id}") for t in overlays.tiles],
    }


def gallery(payload: dict[str, Any], key: str, on_toggle: Callable[[], None] | None = None,
            on_open: Callable[[], None] | None = None) -> Any:
    """Mount the grid; callbacks run before the next script run and read `st.session_state[key]`."""
    return _COMPONENT(key=key, data=payload, on_toggle_change=on_toggle or _noop, on_open_change=on_open or _noop)


def _noop() -> None:
    return None
