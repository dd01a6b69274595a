"""The base layout: htmx from the pinned CDN build with SRI, CSRF on <body>, no inline code
(CSP), our static files, and the error page."""

from __future__ import annotations

import json

import pytest

from tests import factories
from tests.console.helpers import soup


def pages(console, setup) -> dict[str, str]:
    """A path of every kind of console page, for the checks below."""
    channel = factories.make_channel(setup, "email", name="Page check")
    return {
        "table": "/channels",
        "new": "/channels/new",
        "edit": f"/channels/{channel.id}/edit",
        "delete": f"/channels/{channel.id}/delete",
        "not found": "/channels/nope/edit",
    }


def test_htmx_comes_from_the_pinned_cdn_build_with_sri(console, app):
    """One <script> for htmx: the configured URL, its SRI hash, crossorigin=anonymous."""
    page = soup(console.get("/channels"))
    htmx = page.find("script", src=app.config["HTMX_SRC"])
    assert app.config["HTMX_SRC"] == "https://cdn.jsdelivr.net/npm/htmx.org@2.0.11/dist/htmx.min.js"
    assert htmx["integrity"] == app.config["HTMX_SRI"]
    assert (
        htmx["integrity"]
        == "sha384-2OatzQy1H+Zd/IIrjr1TcuDGqLXeHhbooAyJY1KdQMKnr4LZ22k31GBLdYKHmVjg"
    )
    assert htmx["crossorigin"] == "anonymous"
    assert page.find("script", src="/static/app.js") is not None
    assert page.find("link", rel="stylesheet")["href"] == "/static/app.css"
    htmx_config = json.loads(page.find("meta", attrs={"name": "htmx-config"})["content"])
    assert htmx_config["includeIndicatorStyles"] is False
    assert htmx_config["allowEval"] is False


def test_body_carries_the_csrf_token_for_htmx(console):
    """<body hx-headers> holds the same CSRF token as the forms of the page."""
    page = soup(console.get("/channels/new"))
    headers = json.loads(page.body["hx-headers"])
    assert headers["X-CSRFToken"] == page.find("input", attrs={"name": "csrf_token"})["value"]


def test_no_inline_scripts_styles_or_handlers_anywhere(console, setup, client):
    """Every console page: scripts only by src, no <style>, no style=, no on*=, no hx-on."""
    paths = list(pages(console, setup).values())
    for path in paths:
        html = soup(console.get(path))
        for script in html.find_all("script"):
            assert script.get("src"), (path, script)
        assert html.find("style") is None, path
        for element in html.find_all(True):
            for attribute in element.attrs:
                assert attribute != "style", (path, element)
                assert not attribute.startswith("on"), (path, element)
                assert not attribute.startswith(("hx-on", "data-hx-on")), (path, element)


def test_csp_allows_exactly_our_files_and_the_htmx_build(console, app):
    """The console's CSP: scripts from self and the htmx URL; styles from self only."""
    policy = console.get("/channels").headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == f"'self' {app.config['HTMX_SRC']}"
    assert directives["style-src"] == "'self'"
    assert "unsafe" not in policy


@pytest.mark.parametrize(
    ("path", "mimetype"), [("/static/app.css", "text/css"), ("/static/app.js", "text/javascript")]
)
def test_static_files_are_served(client, path, mimetype):
    """Our stylesheet and script are served (no sign-in needed for static files)."""
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == mimetype
    response.close()


def test_nav_marks_the_current_section_and_shows_the_user(console, admin, tenant):
    """The header: product name, nav with the current section marked, user and sign-out."""
    page = soup(console.get("/channels/new"))
    header = page.find("header")
    assert header.find(class_="brand").get_text() == "Channels"
    current = header.find("a", attrs={"aria-current": "page"})
    assert current.get_text() == "Channels" and current["href"] == "/channels"
    menu = header.find(class_="user-menu")
    assert admin.email in menu.get_text() and tenant.name in menu.get_text()
    assert menu.find("form", action="/logout").find("button").get_text() == "Sign out"


def test_error_page_is_a_finished_page(console):
    """Unknown console URLs get the HTML error page (status, title, message, a way back)."""
    response = console.get("/no-such-page")
    assert response.status_code == 404
    page = soup(response)
    assert page.find("h1").get_text() == "Not found"
    assert page.find(class_="error-message").get_text() == "Not found."
    assert page.find("a", href="/") is not None
    assert page.find("link", rel="stylesheet") is not None


def test_error_for_htmx_is_a_bare_message(console):
    """For htmx requests the error is just the message (static/app.js shows it as a flash)."""
    response = console.get("/channels/nope/edit", headers={"HX-Request": "true"})
    assert response.status_code == 404
    page = soup(response)
    assert page.find("html") is None and page.find("nav") is None
    assert page.find(class_="error-message").get_text() == "Channel not found."


def test_method_not_allowed_is_an_html_page(console):
    """A wrong method on a console URL answers the HTML error page, never JSON."""
    response = console.put("/channels")
    assert response.status_code == 405
    assert response.mimetype == "text/html"
