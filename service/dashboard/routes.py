"""Serve the dashboard shell at ``/`` and its assets under ``/dashboard/static/``.

The page holds no data: it asks the API with the key the viewer enters, so the shell and its
assets are open, and every figure on it passes the same authorisation as any other client.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from service.errors import NotFound

STATIC_DIR = Path(__file__).parent / "static"
STATIC_PREFIX = "/dashboard/static"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
# The page talks to its own origin only; the key it keeps must never leave through a referrer.
SHELL_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}

router = APIRouter(tags=["dashboard"])


@router.get("/", response_class=FileResponse, summary="The dashboard",
            responses={200: {"content": {"text/html": {}}}})
def dashboard() -> FileResponse:
    """The single-page dashboard; open, since it reads the API with the viewer's key."""
    return FileResponse(STATIC_DIR / "index.html", media_type=MEDIA_TYPES[".html"],
                        headers=SHELL_HEADERS)


@router.get(STATIC_PREFIX + "/{name}", include_in_schema=False)
def asset(name: str) -> FileResponse:
    """A file shipped beside the page; only files of the static folder, never a path."""
    path = STATIC_DIR / name
    media_type = MEDIA_TYPES.get(path.suffix)
    if media_type is None or "/" in name or name.startswith(".") or not path.is_file():
        raise NotFound(f"no dashboard asset {name!r}")
    return FileResponse(path, media_type=media_type,
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})
