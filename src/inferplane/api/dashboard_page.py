"""The dashboard at ``/dashboard``: one HTML page, its script and its style sheet, shipped in
the package (``inferplane/dashboard/``) and served as they are. The page holds no data: it asks
for a key and reads the admin API (``admin_dashboard.py``, ``/admin/v1/drift``) with it.

The Content-Security-Policy lets the page load nothing but its own files and talk to nothing
but this gateway."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

# name -> media type: the files the page is made of
ASSETS = {"index.html": "text/html; charset=utf-8",
          "dashboard.js": "text/javascript; charset=utf-8",
          "dashboard.css": "text/css; charset=utf-8"}
HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
                               "form-action 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}


@lru_cache(maxsize=len(ASSETS))
def asset(name: str) -> bytes:
    return resources.files("inferplane.dashboard").joinpath(name).read_bytes()


def _route(path: str, name: str) -> Route:
    async def endpoint(_request: Request) -> Response:
        return Response(asset(name), media_type=ASSETS[name], headers=HEADERS)

    return Route(path, endpoint, methods=["GET"])


async def _slash(_request: Request) -> Response:
    return RedirectResponse("/dashboard", status_code=308)


routes = [_route("/dashboard", "index.html"), Route("/dashboard/", _slash, methods=["GET"]),
          *(_route(f"/dashboard/{name}", name) for name in ASSETS if name != "index.html")]
