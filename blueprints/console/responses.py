"""How console views answer: full page or htmx fragment, out-of-band updates, safe redirects.

- ``is_fragment_request()``: htmx asked for a part of the page (``HX-Request`` set), and it is
  neither boosted navigation nor a history restore — those get the full page.
- ``render_page(page, fragment, **context)``: the page, or only ``fragment`` for an htmx
  request. The page ``include``s the same fragment, so both render the same markup.
  core/http.py adds ``Vary: HX-Request`` to every console response.
- ``render_fragments(*parts, flash=True)``: several rendered parts in one htmx response, plus
  the flash region swapped out-of-band (``templates/_flash.html``).
- ``safe_local_url(target)`` / ``redirect_back(default)``: only relative paths of this site
  are followed (never ``//evil``, ``https://evil``, ``/\\evil``); redirects after POST use 303.
- ``send_elsewhere(endpoint, message)``: a gate's answer (303, or for htmx 403 with
  ``HX-Redirect``), keeping where the request was heading as ``next``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import make_response, redirect, render_template, request, url_for
from markupsafe import Markup


def is_fragment_request() -> bool:
    """True when htmx asked for a fragment (not boosted navigation, not a history restore)."""
    headers = request.headers
    return (
        headers.get("HX-Request") == "true"
        and headers.get("HX-Boosted") != "true"
        and headers.get("HX-History-Restore-Request") != "true"
    )


def render_page(page: str, fragment: str | None = None, status: int = 200, **context):
    """Render ``page``, or just ``fragment`` when htmx asked for a fragment."""
    template = fragment if fragment and is_fragment_request() else page
    return render_template(template, **context), status


def render_flash_region(oob: bool = True) -> Markup:
    """The flash region with the pending flash messages (consumed), out-of-band by default."""
    return Markup(render_template("_flash.html", oob=oob))


def render_fragments(*parts: str, flash: bool = True, status: int = 200):
    """Concatenate fragments rendered by ``render_template`` (trusted markup, not user text);
    append the flash region out-of-band."""
    body = Markup("").join(Markup(part) for part in parts)
    if flash:
        body += render_flash_region(oob=True)
    return body, status


def safe_local_url(target: str | None) -> str | None:
    """``target`` if it is a relative path on this site, else None (open-redirect guard)."""
    if not target or not isinstance(target, str) or len(target) > 2000:
        return None
    if "\\" in target or any(ord(char) < 32 or ord(char) == 127 for char in target):
        return None
    if not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def see_other(location: str):
    """Redirect with 303, so that the browser follows a POST with a GET."""
    return redirect(location, 303)


def redirect_back(default: str):
    """303 to the form's (or query's) ``next`` when it is safe, else to ``default``."""
    return see_other(safe_local_url(request.values.get("next")) or default)


def send_elsewhere(endpoint: str, message: str, status: int = 403):
    """Send the request to another page first (a gate: the forced password change, an ended
    support access), with where it was heading as ``next``: 303 for a browser; for htmx,
    ``status`` with ``HX-Redirect`` and the message (never the fragment asked for)."""
    htmx = request.headers.get("HX-Request") == "true"
    # For htmx, the page the request came from; a plain POST has nowhere to return to.
    next_url = current_path() if request.method == "GET" or htmx else None
    if next_url == url_for("console.home"):
        next_url = None  # the start page: where one lands anyway
    target = url_for(endpoint, next=next_url)
    if not htmx:
        return see_other(target)
    page = render_template("error.html", status=status, message=message)
    response = make_response(page, status)
    response.headers["HX-Redirect"] = target
    return response


def current_path() -> str:
    """The path and query of this request (what a no-JS form's ``next`` returns to).

    For an htmx write, the page the user is on (``HX-Current-URL``) when it is ours.
    """
    if request.method != "GET" and request.headers.get("HX-Request") == "true":
        current = urlsplit(request.headers.get("HX-Current-URL", ""))
        if current.netloc == request.host:
            path = current.path + (f"?{current.query}" if current.query else "")
            if safe_local_url(path):
                return path
    path = request.full_path
    return path[:-1] if path.endswith("?") else path
