"""Shared helpers for the pages: the facade handle, the acting user, error display and common renderers.

Pages only read widgets, call the facade and render; nothing here decides anything the core should decide.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import logging
import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import streamlit as st
from PIL import Image, ImageDraw, ImageFont

from dsgen_core.api import Dsgen
from dsgen_core.auth import SESSION_COOKIE
from dsgen_core.errors import DsgenError
from dsgen_core.users import Actor
from dsgen_core.validation import ValidationReport

log = logging.getLogger("dsgen.ui")
T = TypeVar("T")

# Page scripts, relative to app.py; st.page_link / st.switch_page take these paths.
PAGE_DATASETS = "pages/datasets.py"
PAGE_IMPORT = "pages/import_data.py"
PAGE_DATASET = "pages/dataset.py"
PAGE_JOBS = "pages/jobs.py"
PAGE_ACCOUNT = "pages/account.py"
PAGE_ADMIN = "pages/admin.py"
PAGE_AUDIT = "pages/audit.py"
PAGE_EXPLORE = "pages/explore.py"

VERSION_BADGES = {
    "READY": "🟢 READY",
    "PROCESSING": "🟡 PROCESSING",
    "PENDING": "⚪ PENDING",
    "ERROR": "🔴 ERROR",
    "EMPTY": "⚪ EMPTY",
}
JOB_BADGES = {
    "QUEUED": "⚪ QUEUED",
    "RUNNING": "🟡 RUNNING",
    "SUCCEEDED": "🟢 SUCCEEDED",
    "FAILED": "🔴 FAILED",
    "CANCELLED": "⚫ CANCELLED",
}
THUMB_MAX = 512


# ----- facade and acting user ------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def _open_api(home: str | None, catalog_url: str | None) -> Dsgen:
    """One facade per process and installation (the env decides which); shared by all sessions."""
    return Dsgen.open()


def get_api() -> Dsgen:
    return _open_api(os.environ.get("DSGEN_HOME"), os.environ.get("DSGEN_CATALOG_URL"))


ACTOR_RECHECK_SECONDS = 5.0  # a page run calls the facade many times; the session is re-checked this often


def current_token() -> str | None:
    """The session token: the HttpOnly cookie set by /auth/login (AppTest sets session_state instead)."""
    try:
        token = st.context.cookies.get(SESSION_COOKIE)
    except Exception:  # noqa: BLE001 - no request context (bare mode)
        token = None
    if not isinstance(token, str) or not token:  # AppTest: no request, no cookies
        token = st.session_state.get("dsgen_token")
    return token if isinstance(token, str) else None


def current_actor() -> Actor:
    """The logged-in user; without a live session the page says so, links to the log-in and stops."""
    token = current_token()
    cached = st.session_state.get("_dsgen_actor")
    if cached and cached[0] == token and time.monotonic() - cached[1] < ACTOR_RECHECK_SECONDS:
        return cached[2]
    actor = get_api().actor_for_token(token)
    st.session_state["_dsgen_actor"] = (token, time.monotonic(), actor) if actor else None
    if actor is None:
        st.warning("You are not logged in, or your session has ended.")
        st.markdown('<a href="/auth/login" target="_self">Log in</a>', unsafe_allow_html=True)
        st.stop()
    return actor


class _Failed:
    """Sentinel returned by `call` when the facade raised (the error is already on the page)."""

    def __bool__(self) -> bool:
        return False


FAILED = _Failed()


def call(method: str, *args: Any, **kwargs: Any) -> Any:
    """Call `api.<method>(actor, *args)`; on a facade error show it and return FAILED (falsy)."""
    api = get_api()
    try:
        return getattr(api, method)(current_actor(), *args, **kwargs)
    except DsgenError as exc:
        st.error(str(exc))
        return FAILED
    except Exception as exc:  # a bug, not a user error: keep the page alive, log the trace on the server
        log.exception("facade call %s failed", method)
        st.error(f"Unexpected error in {method}: {type(exc).__name__}: {exc}")
        return FAILED


def guarded(fn: Callable[[], T]) -> T | _Failed:
    """Run a callable that talks to the facade; show facade errors instead of a trace."""
    try:
        return fn()
    except DsgenError as exc:
        st.error(str(exc))
        return FAILED


def run_caption() -> None:
    """Last element of every page: a run counter browser tests wait on (see STREAMLIT_NOTES)."""
    n = st.session_state.get("_dsgen_runs", 0) + 1
    st.session_state["_dsgen_runs"] = n
    st.caption(f"dsgen · run {n}")


# ----- formatting ------------------------------------------------------------------------------


def badge(status: str) -> str:
    return VERSION_BADGES.get(status) or JOB_BADGES.get(status) or status


def version_names(groups: Any) -> dict[int, str]:
    """Version id → "group / split vX.Y.Z" for every version of the listed groups (links and tables name them)."""
    return {v.id: f"{g.name} / {v.split} v{v.version}" for g in groups or [] for v in g.versions}


def fmt_time(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S") if t else ""


def fmt_int(n: int | None) -> str:
    return f"{n:,}" if n is not None else ""


# ----- validation report -----------------------------------------------------------------------


def render_report(report: ValidationReport, title: str = "Validation report") -> None:
    """Errors red, warnings orange, each with its count and expandable examples; then the stats."""
    st.markdown(f"**{title}**")
    errors, warnings = report.errors, report.warnings
    if not report.findings:
        st.success("✅ No problems found.")
    else:
        summary = f"{len(errors)} error(s), {len(warnings)} warning(s)"
        (st.error if errors else st.warning)(summary)
    for f in errors + warnings:
        color = "red" if f.severity == "error" else "orange"
        icon = "⛔" if f.severity == "error" else "⚠️"
        st.markdown(f"{icon} :{color}[**{f.severity.upper()}** `{f.code}` — {f.message}] · **{f.count:,}**")
        if f.examples:
            with st.expander(f"Examples ({len(f.examples)} of {f.count:,})"):
                for ex in f.examples:
                    st.text(ex)
    numbers = {k: v for k, v in report.stats.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    others = {k: v for k, v in report.stats.items() if k not in numbers and v not in (None, "")}
    if numbers:
        cols = st.columns(min(6, len(numbers)))
        for i, (k, v) in enumerate(numbers.items()):
            cols[i % len(cols)].metric(k.replace("_", " "), f"{v:,}")
    for k, v in others.items():
        st.caption(f"{k.replace('_', ' ')}: `{v}`")


# ----- thumbnails with boxes -------------------------------------------------------------------


def class_color(name: str) -> tuple[int, int, int]:
    """A stable, saturated colour per class name."""
    h = int(hashlib.md5(name.encode("utf-8")).hexdigest()[:6], 16) / 0xFFFFFF  # noqa: S324 - not security
    r, g, b = colorsys.hsv_to_rgb(h, 0.85, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


@st.cache_resource(show_spinner=False)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the small bitmap font
        return ImageFont.load_default()


@st.cache_data(show_spinner=False, max_entries=512)
def draw_boxes(path: str, width: int, height: int, boxes: tuple[tuple[float, float, float, float, str], ...]) -> bytes:
    """The image (or its thumbnail) scaled to ≤ THUMB_MAX px with class-coloured boxes and labels, as JPEG.

    Boxes are in original-image pixels (width × height); the file may be a smaller thumbnail.
    """
    with Image.open(path) as im:
        im.draft("RGB", (THUMB_MAX, THUMB_MAX))  # fast JPEG downscale on decode
        img = im.convert("RGB")
    img.thumbnail((THUMB_MAX, THUMB_MAX))
    sx = img.width / max(1, width)
    sy = img.height / max(1, height)
    draw = ImageDraw.Draw(img)
    font = _font(max(11, img.width // 34))
    line = max(2, round(min(img.size) / 170))
    for x, y, w, h, name in boxes:
        color = class_color(name)
        x0, y0, x1, y1 = x * sx, y * sy, (x + w) * sx, (y + h) * sy
        draw.rectangle((x0, y0, x1, y1), outline=color, width=line)
        tb = draw.textbbox((0, 0), name, font=font)
        tw, th = tb[2] - tb[0], tb[3] - tb[1]
        ty = y0 - th - 4 if y0 - th - 4 >= 0 else y0
        draw.rectangle((x0, ty, x0 + tw + 4, ty + th + 4), fill=color)
        draw.text((x0 + 2, ty + 1), name, fill=(0, 0, 0) if sum(color) > 400 else (255, 255, 255), font=font)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def sample_tile(sample: Any) -> bytes | None:
    """Draw one SampleImage; None when neither a thumbnail nor the image file is readable."""
    for p in (sample.thumb_path, sample.image_path):
        if p is not None and Path(p).exists():
            try:
                return draw_boxes(str(p), int(sample.width), int(sample.height), tuple(tuple(b) for b in sample.boxes))
            except OSError:
                continue
    return None
