"""The read-only hook: ``requires_write`` refuses every console write to support staff, and
``can_write`` hides write controls. (The tenant switcher decides *which* tenant they read.)"""

from __future__ import annotations

import pytest
from flask import session
from sqlalchemy import func, select

from blueprints.console import context
from core.extensions import db
from core.models import Channel
from tests import factories
from tests.console.helpers import csrf_token, htmx_headers, soup

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Routes any signed-in user may POST to: they change only the user's own session.
SESSION_ROUTES = {"console.login", "console.logout"}


@pytest.fixture
def viewing(monkeypatch, setup):
    """Support staff looking at ``setup``'s tenant, whatever mechanism chose it."""
    monkeypatch.setattr(context, "_resolve_tenant", lambda: setup.tenant)
    return setup.tenant


def console_write_routes(app):
    """(method, rule, endpoint) of every channel write route of the console."""
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("console.channels") or rule.endpoint in SESSION_ROUTES:
            continue
        for method in sorted(rule.methods & WRITE_METHODS):
            routes.append((method, rule.rule, rule.endpoint))
    return routes


def test_every_channel_write_route_is_refused_to_support_staff(
    app, support_console, viewing, setup
):
    """POST/DELETE on every console channel route (incl. htmx fragments and checks): 403."""
    channel = factories.make_channel(setup, "email", name="Keep me")
    routes = console_write_routes(app)
    assert len(routes) >= 8
    token = csrf_token(support_console, "/channels")
    for method, rule, endpoint in routes:
        path = rule.replace("<channel_id>", channel.id)
        for headers in ({}, htmx_headers(support_console, "/channels")):
            response = support_console.open(
                path,
                method=method,
                data={"csrf_token": token, **setup.email_payload(name="Hacked")},
                headers=headers,
            )
            assert response.status_code == 403, (method, rule)
            assert "read-only" in soup(response).find(class_="error-message").get_text()
        assert getattr(app.view_functions[endpoint], "requires_write", False), endpoint
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Channel)) == 1
    assert db.session.scalar(select(Channel.name)) == "Keep me"


@pytest.mark.parametrize("path", ["/channels/new", "/channels/{id}/delete"])
def test_write_pages_are_refused_to_support_staff(support_console, viewing, setup, path):
    """The pages that exist only to write (new form, delete confirmation) are 403 too."""
    channel = factories.make_channel(setup, "email")
    assert support_console.get(path.format(id=channel.id)).status_code == 403


def test_support_staff_read_the_table_without_write_controls(support_console, viewing, setup):
    """The table renders for support staff, with no New button, no row actions, no forms."""
    channel = factories.make_channel(setup, "email", name="Visible")
    page = soup(support_console.get("/channels"))
    assert page.find(id=f"channel-{channel.id}") is not None
    assert page.find("a", href="/channels/new") is None
    assert page.find(class_="row-actions") is None
    assert (
        page.find(attrs={"hx-post": True}) is None and page.find(attrs={"hx-delete": True}) is None
    )


def test_support_staff_see_the_edit_page_read_only(support_console, viewing, setup):
    """The channel page shows its values in disabled fieldsets, without a save button."""
    channel = factories.make_channel(setup, "email", name="Visible")
    page = soup(support_console.get(f"/channels/{channel.id}/edit"))
    assert page.find("input", id="name")["value"] == "Visible"
    assert all(fieldset.has_attr("disabled") for fieldset in page.find_all("fieldset"))
    assert page.find("button", string="Save changes") is None


def test_admins_may_write(console, setup):
    """Tenant admins pass the same hook (the New button is there and the form opens)."""
    assert soup(console.get("/channels")).find("a", href="/channels/new") is not None
    assert console.get("/channels/new").status_code == 200


def test_current_tenant_is_the_admins_own(console, admin, tenant, other_tenant):
    """An admin's requests are about their own tenant; nothing in the request can change that."""
    with console.application.test_request_context("/channels?tenant_id=" + other_tenant.id):
        from flask_login import login_user

        login_user(admin)
        session["support_tenant_id"] = other_tenant.id
        assert context.current_tenant().id == tenant.id
