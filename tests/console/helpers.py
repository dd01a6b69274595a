"""Helpers for console tests: CSRF tokens from pages, signing in, reading rendered HTML."""

from __future__ import annotations

import json

from bs4 import BeautifulSoup

PASSWORD = "correct-horse-battery"


def soup(response) -> BeautifulSoup:
    """The response's HTML, parsed."""
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def csrf_token(client, path: str = "/login") -> str:
    """The CSRF token of the session, read from a page as a browser would see it."""
    page = soup(client.get(path, follow_redirects=True))
    hidden = page.find("input", attrs={"name": "csrf_token"})
    if hidden is not None:
        return hidden["value"]
    return json.loads(page.body["hx-headers"])["X-CSRFToken"]


def sign_in(client, email: str, password: str = PASSWORD, next_url: str | None = None):
    """Submit the sign-in form (with its CSRF token); returns the response."""
    data = {"csrf_token": csrf_token(client, "/login"), "email": email, "password": password}
    if next_url is not None:
        data["next"] = next_url
    return client.post("/login", data=data)


def htmx_headers(client, path: str = "/channels", **extra) -> dict:
    """Headers of an htmx request from ``path``: HX-Request and the X-CSRFToken of <body>."""
    headers = {
        "HX-Request": "true",
        "HX-Current-URL": f"http://localhost{path}",
        "X-CSRFToken": csrf_token(client, path),
    }
    headers.update(extra)
    return headers


def field_errors(html) -> dict[str, list[str]]:
    """{field name: [messages]} from the error lists rendered next to the fields."""
    page = html if isinstance(html, BeautifulSoup) else soup(html)
    errors = {}
    for block in page.select("ul.field-errors[id$='-error']"):
        field = block["id"].removesuffix("-error")
        errors[field] = [item.get_text() for item in block.find_all("li")]
    return errors


def open_tenant_in_session(client, tenant_id: str) -> None:
    """Store in ``client``'s session that its support user opened ``tenant_id`` just now, as
    ``blueprints.console.context.grant_support_access`` does (without the reason form)."""
    from blueprints.console.context import SUPPORT_OPENED_AT_KEY, SUPPORT_TENANT_KEY
    from core.db_types import rfc3339, utcnow

    with client.session_transaction() as stored:
        stored[SUPPORT_TENANT_KEY] = tenant_id
        stored[SUPPORT_OPENED_AT_KEY] = rfc3339(utcnow())
