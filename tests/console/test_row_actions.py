"""Row actions from the table: make default, disable/enable, delete — htmx and no-JS."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.extensions import db
from core.models import Channel
from core.services import channels as channel_service
from tests import factories
from tests.console.helpers import csrf_token, htmx_headers, soup

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def reload(channel: Channel) -> Channel | None:
    """The channel as stored now (None once deleted)."""
    db.session.expire_all()
    return db.session.scalar(select(Channel).where(Channel.id == channel.id))


def parts(response):
    """(main rows, out-of-band rows by id, flash texts) of an htmx action response."""
    page = soup(response)
    oob_rows = {row["id"]: row for row in page.find_all("tr", attrs={"hx-swap-oob": "true"})}
    main_rows = [row for row in page.find_all("tr") if not row.has_attr("hx-swap-oob")]
    flash = page.find(id="flash")
    assert flash["hx-swap-oob"] == "true"
    return main_rows, oob_rows, [p.get_text() for p in flash.find_all("p")]


@pytest.fixture
def two_email(setup):
    """A default email channel and a second, non-default one (older first)."""
    first = factories.make_channel(setup, "email", name="First")
    second = factories.make_channel(setup, "email", name="Second")
    return first, second


def test_make_default_updates_both_rows(console, two_email):
    """htmx make-default: the row in place, the previous default's row out-of-band, a flash."""
    first, second = two_email
    response = console.post(f"/channels/{second.id}/default", headers=htmx_headers(console))
    assert response.status_code == 200
    main, oob, flash = parts(response)
    assert [row["id"] for row in main] == [f"channel-{second.id}"]
    assert main[0].find(class_="badge-default") is not None
    assert oob[f"channel-{first.id}"].find(class_="badge-default") is None
    assert flash == ["“Second” is now the default email channel."]
    assert soup(response).find("nav") is None
    assert reload(second).is_default and not reload(first).is_default


def test_make_default_without_javascript_redirects_back(console, two_email):
    """The plain POST form answers 303 to its next (the filtered table) and flashes there."""
    first, second = two_email
    token = csrf_token(console)
    response = console.post(
        f"/channels/{second.id}/default", data={"csrf_token": token, "next": "/channels?q=sec"}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/channels?q=sec"
    assert (
        "“Second” is now the default email channel."
        in soup(console.get("/channels")).find(id="flash").get_text()
    )
    assert reload(second).is_default


@pytest.mark.parametrize("target", ["//evil.example", "https://evil.example/x", "/\\evil.example"])
def test_action_next_never_leaves_the_site(console, two_email, target):
    """An unsafe next on a row action falls back to the channels table."""
    _, second = two_email
    data = {"csrf_token": csrf_token(console), "next": target}
    response = console.post(f"/channels/{second.id}/disable", data=data)
    assert response.headers["Location"] == "/channels"


def test_disabling_the_default_names_the_channel_that_took_over(console, two_email):
    """Disable the default: its row shows Disabled, the successor's row becomes Default."""
    first, second = two_email
    response = console.post(f"/channels/{first.id}/disable", headers=htmx_headers(console))
    main, oob, flash = parts(response)
    assert main[0].find(class_="badge-disabled").get_text() == "Disabled"
    assert main[0].find("form", action=f"/channels/{first.id}/enable") is not None
    assert oob[f"channel-{second.id}"].find(class_="badge-default") is not None
    assert flash == ["“First” is disabled. “Second” is now the default email channel."]
    assert reload(first).status == "disabled" and reload(second).is_default


def test_disabling_the_only_channel_says_there_is_no_default(console, setup):
    """When nothing can take over, the flash says the type has no default now."""
    only = factories.make_channel(setup, "sms", name="Only SMS")
    _, _, flash = parts(console.post(f"/channels/{only.id}/disable", headers=htmx_headers(console)))
    assert flash == [
        "“Only SMS” is disabled."
        " There is no default SMS channel now: no other SMS channel is available."
    ]


def test_enable_brings_a_channel_back(console, two_email, tenant):
    """Enable a disabled channel: its status is available again."""
    _, second = two_email
    channel_service.update_channel(tenant.id, second.id, {"status": "disabled"}, factories.ACTOR)
    db.session.commit()
    main, _, flash = parts(
        console.post(f"/channels/{second.id}/enable", headers=htmx_headers(console))
    )
    assert main[0].find(class_="badge-available") is not None
    assert flash == ["“Second” is enabled."]
    assert reload(second).status == "available"


def test_a_refused_action_flashes_the_reason_and_keeps_the_row(console, two_email, tenant):
    """Making a disabled channel default is refused by the service: error flash, row unchanged."""
    _, second = two_email
    channel_service.update_channel(tenant.id, second.id, {"status": "disabled"}, factories.ACTOR)
    db.session.commit()
    response = console.post(f"/channels/{second.id}/default", headers=htmx_headers(console))
    assert response.status_code == 200
    main, oob, flash = parts(response)
    assert main[0].find(class_="badge-disabled") is not None
    assert flash == ["The channel could not be updated. A disabled channel cannot be the default."]
    assert soup(response).find(class_="flash-error") is not None
    assert not reload(second).is_default


def test_htmx_delete_removes_the_row_and_names_the_new_default(console, two_email):
    """DELETE: no main content (the row goes), the successor's row out-of-band, a flash."""
    first, second = two_email
    response = console.delete(f"/channels/{first.id}/delete", headers=htmx_headers(console))
    assert response.status_code == 200
    main, oob, flash = parts(response)
    assert main == []
    assert set(oob) == {f"channel-{second.id}"}
    assert flash == ["“First” was deleted. “Second” is now the default email channel."]
    assert reload(first) is None and reload(second).is_default


def test_deleting_the_last_channel_reloads_the_page_for_the_empty_state(console, setup):
    """When no channel is left, htmx reloads the page (HX-Refresh); the flash shows there."""
    only = factories.make_channel(setup, "sms", name="Only SMS")
    response = console.delete(f"/channels/{only.id}/delete", headers=htmx_headers(console))
    assert response.status_code == 200
    assert response.headers["HX-Refresh"] == "true"
    page = soup(console.get("/channels"))
    assert page.find(class_="empty-state").h2.get_text() == "No channels yet"
    assert "“Only SMS” was deleted." in page.find(id="flash").get_text()


def test_delete_without_javascript_confirms_first(console, two_email):
    """No JS: the Delete link opens a confirmation page whose POST deletes and redirects 303."""
    _, second = two_email
    page = soup(console.get(f"/channels/{second.id}/delete?next=/channels?q=s"))
    form = page.find("form", action=f"/channels/{second.id}/delete")
    assert "Delete the channel “Second”?" in page.h1.get_text()
    data = {field["name"]: field["value"] for field in form.find_all("input")}
    assert data["next"] == "/channels?q=s"
    response = console.post(form["action"], data=data)
    assert response.status_code == 303
    assert response.headers["Location"] == "/channels?q=s"
    assert reload(second) is None


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("POST", "default"),
        ("POST", "disable"),
        ("POST", "enable"),
        ("POST", "delete"),
        ("DELETE", "delete"),
    ],
)
def test_htmx_actions_need_the_csrf_header(console, two_email, method, suffix):
    """An htmx write without X-CSRFToken is refused with 400 and changes nothing."""
    first, second = two_email
    headers = htmx_headers(console)
    del headers["X-CSRFToken"]
    response = console.open(f"/channels/{second.id}/{suffix}", method=method, headers=headers)
    assert response.status_code == 400
    assert soup(response).find(class_="error-message") is not None  # bare message for app.js
    assert reload(second) is not None and reload(second).status == "available"
    assert reload(first).is_default


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("POST", "default"),
        ("POST", "disable"),
        ("POST", "enable"),
        ("GET", "delete"),
        ("POST", "delete"),
    ],
)
def test_another_tenants_channel_behaves_like_an_unknown_one(
    console, setup, other_tenant, method, suffix
):
    """Row actions on another tenant's channel: 404 like an unknown id; nothing changes."""
    theirs = factories.make_ready_tenant(other_tenant, domain="other.example")
    channel = factories.make_channel(
        theirs, "email", send_from_email="a@other.example", is_default=False
    )
    headers = htmx_headers(console)
    for channel_id in (channel.id, UNKNOWN_ID):
        response = console.open(f"/channels/{channel_id}/{suffix}", method=method, headers=headers)
        assert response.status_code == 404
        assert soup(response).find(class_="error-message").get_text() == "Channel not found."
    stored = reload(channel)
    assert stored is not None and not stored.is_default and stored.status == "available"


def test_rows_link_back_to_the_page_they_came_from(console, two_email):
    """Rows rendered by an htmx action carry next = the page the user is on (HX-Current-URL)."""
    first, second = two_email
    headers = htmx_headers(console, "/channels?q=s&channel_type=email")
    main, _, _ = parts(console.post(f"/channels/{second.id}/disable", headers=headers))
    assert (
        main[0].find("input", attrs={"name": "next"})["value"] == "/channels?q=s&channel_type=email"
    )
