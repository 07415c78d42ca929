"""Log-in for the web app: a plain HTML form posted to a Starlette route that sets an HttpOnly cookie,
and an ASGI middleware that lets no request (page, websocket, media) through without a live session.

`st.session_state` alone forgets a log-in on reload; a cookie checked before Streamlit sees the
request does not (see ../shared/STREAMLIT_NOTES.md). Rights are still checked by the facade.
"""

from __future__ import annotations

import html
import os
import time
from functools import cache
from typing import Any
from urllib.parse import quote, urlparse

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from dsgen_core.api import Dsgen
from dsgen_core.auth import SESSION_COOKIE, AuthFailed, session_lifetime
from dsgen_core.errors import DsgenError

COOKIE = SESSION_COOKIE
PUBLIC_PATHS = ("/auth/login", "/auth/logout", "/_stcore/health", "/_stcore/host-config", "/favicon.png")
_CACHE_SECONDS = 10.0  # a revoked session may be honoured this long by one server process
_seen: dict[str, tuple[float, bool]] = {}


def api() -> Dsgen:
    """The process's one facade, shared with the pages (opening a second would migrate-check,
    ensure the admin and pool connections twice)."""
    from pages._common import get_api

    return get_api()


def _valid(token: str | None) -> bool:
    if not token:
        return False
    now = time.monotonic()
    hit = _seen.get(token)
    if hit and now - hit[0] < _CACHE_SECONDS:
        return hit[1]
    ok = api().actor_for_token(token) is not None
    if len(_seen) > 10_000:
        _seen.clear()
    _seen[token] = (now, ok)
    return ok


def safe_next(target: str | None) -> str:
    """Only same-site paths: an open redirect would turn the log-in page into a phishing tool."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parsed = urlparse(target)
    return "/" if parsed.scheme or parsed.netloc else target


LOGIN_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Log in · dsgen</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body {{ font-family: system-ui, sans-serif; background: #f6f7fb; display: grid; place-items: center;
        min-height: 100vh; margin: 0; color: #1f2330; }}
 form {{ background: #fff; padding: 2rem 2.2rem; border-radius: 12px; width: 320px;
        box-shadow: 0 2px 12px rgba(0,0,0,.08); }}
 h1 {{ font-size: 1.4rem; margin: 0 0 1.2rem; }}
 label {{ display: block; font-size: .85rem; margin: .8rem 0 .3rem; }}
 input {{ width: 100%; box-sizing: border-box; padding: .55rem .6rem; border: 1px solid #c9ccd6;
         border-radius: 8px; font-size: 1rem; }}
 button {{ margin-top: 1.3rem; width: 100%; padding: .6rem; border: 0; border-radius: 8px;
          background: #2b59c3; color: #fff; font-size: 1rem; cursor: pointer; }}
 .error {{ background: #fdecec; color: #a31515; padding: .6rem .7rem; border-radius: 8px; font-size: .9rem; }}
 .hint {{ color: #6b7080; font-size: .8rem; margin-top: 1rem; }}
</style></head>
<body><form method="post" action="/auth/login">
<h1>dsgen · log in</h1>
{error}
<label for="username">Username or e-mail</label>
<input id="username" name="username" autocomplete="username" required autofocus value="{username}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<input type="hidden" name="next" value="{next}">
<button type="submit">Log in</button>
<p class="hint">First start: the admin's one-time password was printed by <code>dsgen up</code>.</p>
</form></body></html>"""


def _login_page(error: str = "", username: str = "", next_path: str = "/", status: int = 200) -> HTMLResponse:
    box = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    body = LOGIN_HTML.format(error=box, username=html.escape(username), next=html.escape(next_path))
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


async def login_form(request: Request) -> Response:
    if _valid(request.cookies.get(COOKIE)):
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return _login_page(next_path=safe_next(request.query_params.get("next")))


async def login_submit(request: Request) -> Response:
    form = await request.form()
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    next_path = safe_next(str(form.get("next", "/")))
    try:
        result = api().login(username, password, kind="web", name=request.headers.get("user-agent", "")[:200])
    except AuthFailed as exc:
        return _login_page(str(exc), username, next_path, status=401)
    except DsgenError as exc:
        return _login_page(str(exc), username, next_path, status=400)
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        COOKIE, result.token, max_age=int(session_lifetime("web").total_seconds()), httponly=True,
        samesite="lax", secure=os.environ.get("DSGEN_COOKIE_SECURE", "0") == "1", path="/",
    )
    return response


async def logout(request: Request) -> Response:
    token = request.cookies.get(COOKIE)
    api().logout(token)
    _seen.pop(token or "", None)
    response = RedirectResponse("/auth/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


# ----- image files for the Explore page: by URL (never data URIs), rights checked by the facade ------
_FILE_CACHE = "private, max-age=600"  # per user; a revoked right stops new fetches at once
_NOT_FOUND = "not found"  # no permission looks exactly like a missing image


def _image_response(request: Request, method: str) -> Response:
    """Resolve the user from the cookie, ask the facade for the file; 404 for missing and forbidden alike."""
    actor = api().actor_for_token(request.cookies.get(COOKIE))
    if actor is None:
        return Response("log in first", status_code=401, media_type="text/plain")
    vid, iid = int(request.path_params["version_id"]), int(request.path_params["image_id"])
    try:
        path = getattr(api(), method)(actor, vid, iid)
    except DsgenError:
        return Response(_NOT_FOUND, status_code=404, media_type="text/plain")
    if path is None:
        return Response(placeholder_jpeg(), media_type="image/jpeg", headers={"Cache-Control": "no-store"})
    media = "image/jpeg" if method == "thumbnail_file" else None
    return FileResponse(path, media_type=media, headers={"Cache-Control": _FILE_CACHE})


def thumbnail(request: Request) -> Response:
    """GET /thumb/{version_id}/{image_id}: the 512 px JPEG (made on the fly when the job has not yet)."""
    return _image_response(request, "thumbnail_file")


def full_image(request: Request) -> Response:
    """GET /image/{version_id}/{image_id}: the original file, for the detail view."""
    return _image_response(request, "image_file")


@cache
def placeholder_jpeg() -> bytes:
    """A grey tile for images without readable bytes (imported without media, missing, corrupt)."""
    import io

    from PIL import Image, ImageDraw

    img = Image.new("RGB", (320, 240), (222, 224, 230))
    ImageDraw.Draw(img).text((110, 112), "no image", fill=(120, 124, 135))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=80)
    return buf.getvalue()


ROUTES = [
    Route("/auth/login", login_form, methods=["GET"]),
    Route("/auth/login", login_submit, methods=["POST"]),
    Route("/auth/logout", logout, methods=["GET", "POST"]),
    # plain functions: Starlette runs them in its thread pool, so catalog and file I/O never block the loop
    Route("/thumb/{version_id:int}/{image_id:int}", thumbnail, methods=["GET"]),
    Route("/image/{version_id:int}/{image_id:int}", full_image, methods=["GET"]),
]


class RequireLogin:
    """ASGI middleware: every HTTP request and websocket needs a live session cookie."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        if _valid(_cookie(scope)):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        path = scope["path"] + (("?" + scope["query_string"].decode("latin-1")) if scope.get("query_string") else "")
        accepts_html = b"text/html" in dict(scope.get("headers", [])).get(b"accept", b"")
        if scope.get("method") == "GET" and accepts_html:
            response: Response = RedirectResponse(f"/auth/login?next={quote(path)}", status_code=303)
        else:
            response = Response("log in first", status_code=401, media_type="text/plain")
        await response(scope, receive, send)


def _cookie(scope: dict) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, val = part.strip().partition("=")
                if key == COOKIE:
                    return val
    return None
