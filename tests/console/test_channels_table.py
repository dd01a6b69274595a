"""The channels table: page vs fragment, filters, live search, keyset pagination, empty states."""

from __future__ import annotations

import pytest

from core.db_types import utcnow
from core.extensions import db
from tests import factories
from tests.console.helpers import soup

HX = {"HX-Request": "true"}


@pytest.fixture
def app_config(app_config):
    """Small pages, so that pagination is exercised with a handful of channels."""
    return app_config | {"PAGE_SIZE": 3}


def row_names(response) -> list[str]:
    """The channel names of the table rows, in order."""
    return [row.th.get_text(strip=True) for row in soup(response).select("tbody#channel-rows tr")]


def test_full_page_has_layout_filters_and_rows(console, setup):
    """GET /channels: the layout (nav, flash region), the filter form and one row per channel."""
    email = factories.make_channel(setup, "email", name="Support Email")
    sms = factories.make_channel(setup, "sms", name="Alerts SMS")
    response = console.get("/channels")
    assert response.status_code == 200
    page = soup(response)
    assert page.find("nav", attrs={"aria-label": "Main"}) is not None
    assert page.find(id="flash") is not None
    assert page.find("label", string="Search")["for"] == "filter-q"
    assert page.find("label", string="Type") and page.find("label", string="Status")
    email_row = page.find(id=f"channel-{email.id}")
    cells = [cell.get_text(" ", strip=True) for cell in email_row.find_all(["th", "td"])]
    assert cells[:6] == [
        "Support Email",
        "Email",
        "support@example.com",
        f"{setup.email_integration.name} (console)",
        "Available",
        "Default",
    ]
    assert page.find(id=f"channel-{sms.id}").find(
        "td", attrs={"data-label": "Sends from"}
    ).get_text() == (setup.number.phone_number)
    assert response.headers["Vary"].count("HX-Request") == 1


def test_htmx_request_gets_only_the_results_fragment(console, setup):
    """With HX-Request the response is the #channel-results fragment, without the layout."""
    factories.make_channel(setup, "email", name="Support Email")
    response = console.get("/channels?q=support", headers=HX)
    assert response.status_code == 200
    page = soup(response)
    assert (
        page.find("nav") is None
        and page.find("html") is None
        and page.find("form", class_="filters") is None
    )
    assert page.find(id="channel-results") is not None
    assert row_names(response) == ["Support Email"]
    assert "HX-Request" in response.headers["Vary"]


@pytest.mark.parametrize(
    "headers",
    [
        {"HX-Request": "true", "HX-Boosted": "true"},
        {"HX-Request": "true", "HX-History-Restore-Request": "true"},
    ],
)
def test_boosted_and_history_restore_requests_get_the_full_page(console, setup, headers):
    """Boosted navigation and history restores need the whole page, never a bare fragment."""
    page = soup(console.get("/channels", headers=headers))
    assert page.find("nav", attrs={"aria-label": "Main"}) is not None


def test_search_form_is_a_real_get_form_enhanced_with_htmx(console, setup):
    """Search: a GET form (works without JS) whose input searches as you type via htmx."""
    page = soup(console.get("/channels"))
    form = page.find("form", class_="filters")
    assert form["method"] == "get" and form["action"] == "/channels"
    assert form["hx-target"] == "#channel-results" and form["hx-push-url"] == "true"
    search = page.find("input", id="filter-q")
    assert search["type"] == "search" and search["name"] == "q"
    assert search["hx-trigger"] == "keyup changed delay:250ms, search"
    assert search["hx-get"] == "/channels"
    for select_id in ("filter-type", "filter-status"):
        assert page.find("select", id=select_id)["hx-trigger"] == "change"


def test_filters_and_search_use_the_shared_query(console, setup):
    """Type, status and name search narrow the rows, and the form shows the chosen values."""
    factories.make_channel(setup, "email", name="Billing Email")
    factories.make_channel(setup, "email", name="Support Email", is_default=False)
    factories.make_channel(setup, "sms", name="Billing SMS")
    assert row_names(console.get("/channels?channel_type=sms", headers=HX)) == ["Billing SMS"]
    assert row_names(console.get("/channels?q=BILLING", headers=HX)) == [
        "Billing SMS",
        "Billing Email",
    ]
    assert row_names(console.get("/channels?q=billing&channel_type=email", headers=HX)) == [
        "Billing Email"
    ]
    assert row_names(console.get("/channels?status=disabled", headers=HX)) == []
    page = soup(console.get("/channels?channel_type=sms&q=bill"))
    assert page.find("input", id="filter-q")["value"] == "bill"
    assert page.find("select", id="filter-type").find("option", selected=True)["value"] == "sms"


def test_status_filter_shows_pending_and_disabled(console, setup, tenant):
    """A channel on an unverified domain is pending; a disabled one is disabled."""
    pending_domain = factories.make_domain(tenant, "pending.example", verified=False)
    factories.make_channel(
        setup,
        "email",
        name="Pending",
        send_from_email="a@pending.example",
        email_domain_id=pending_domain.id,
    )
    off = factories.make_channel(setup, "sms", name="Off")
    from core.services import channels

    channels.update_channel(tenant.id, off.id, {"status": "disabled"}, factories.ACTOR)
    db.session.commit()
    pending = soup(console.get("/channels?status=pending_verification", headers=HX))
    assert [b.get_text() for b in pending.select(".badge-pending-verification")] == [
        "Pending verification"
    ]
    assert row_names(console.get("/channels?status=disabled", headers=HX)) == ["Off"]


def test_invalid_filter_values_are_ignored(console, setup):
    """Unknown type/status values show everything instead of failing."""
    factories.make_channel(setup, "email", name="Mail")
    response = console.get("/channels?channel_type=fax&status=weird", headers=HX)
    assert response.status_code == 200
    assert row_names(response) == ["Mail"]


def test_search_text_is_escaped(console, setup):
    """Names and the search text are HTML-escaped everywhere."""
    factories.make_channel(setup, "email", name="<script>alert(1)</script>")
    response = console.get("/channels?q=%3Cscript")
    html = response.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_keyset_pages_step_forward_and_back(console, setup):
    """Next and Newer links walk the pages newest first, keeping the filters."""
    for n in range(7):
        factories.make_channel(setup, "email", name=f"Channel {n}")
    first = console.get("/channels?q=channel", headers=HX)
    assert row_names(first) == ["Channel 6", "Channel 5", "Channel 4"]
    pager = soup(first).find("nav", class_="pager")
    assert pager.find("a", rel="prev") is None
    next_link = pager.find("a", rel="next")
    assert next_link["hx-get"] == next_link["href"] and "q=channel" in next_link["href"]
    second = console.get(next_link["href"], headers=HX)
    assert row_names(second) == ["Channel 3", "Channel 2", "Channel 1"]
    third = console.get(soup(second).find("a", rel="next")["href"], headers=HX)
    assert row_names(third) == ["Channel 0"]
    assert soup(third).find("a", rel="next") is None
    back = console.get(soup(third).find("a", rel="prev")["href"], headers=HX)
    assert row_names(back) == ["Channel 3", "Channel 2", "Channel 1"]
    newest = console.get(soup(back).find("a", rel="prev")["href"], headers=HX)
    assert row_names(newest) == ["Channel 6", "Channel 5", "Channel 4"]
    assert soup(newest).find("a", rel="prev") is None


def test_pages_are_stable_when_channels_are_added(console, setup):
    """A channel created while paging does not shift the next page."""
    for n in range(4):
        factories.make_channel(setup, "email", name=f"Channel {n}")
    first = console.get("/channels", headers=HX)
    next_url = soup(first).find("a", rel="next")["href"]
    factories.make_channel(setup, "email", name="Brand new")
    assert row_names(console.get(next_url, headers=HX)) == ["Channel 0"]


def test_a_bad_cursor_is_a_clear_400(console, setup):
    """A tampered cursor answers 400 with the error page, not a 500."""
    response = console.get("/channels?cursor=not-a-cursor")
    assert response.status_code == 400
    assert "The cursor is not valid." in soup(response).find(class_="error-message").get_text()


def test_empty_state_tells_what_to_do(console, setup):
    """No channels at all: explain what a channel needs and link to the form."""
    page = soup(console.get("/channels"))
    empty = page.find(class_="empty-state")
    assert empty.h2.get_text() == "No channels yet"
    assert "integration" in empty.get_text()
    assert empty.find("a", href="/channels/new") is not None


def test_empty_state_for_filters_that_match_nothing(console, setup):
    """Filters that match nothing say so and offer to clear them."""
    factories.make_channel(setup, "email", name="Mail")
    page = soup(console.get("/channels?q=zzz", headers=HX))
    empty = page.find(class_="empty-state")
    assert empty.h2.get_text() == "No channels match these filters"
    assert "“zzz”" in empty.get_text()
    assert empty.find("a", string="Clear filters")["href"] == "/channels"


def test_other_tenants_channels_are_never_listed(console, setup, other_tenant):
    """Only the signed-in admin's tenant's channels appear, whatever the search."""
    factories.make_channel(setup, "email", name="Mine")
    theirs = factories.make_ready_tenant(other_tenant, domain="other.example")
    factories.make_channel(theirs, "email", name="Theirs", send_from_email="a@other.example")
    assert row_names(console.get("/channels", headers=HX)) == ["Mine"]
    assert row_names(console.get("/channels?q=theirs", headers=HX)) == []


def test_rows_have_stable_ids_and_actions(console, setup):
    """Each row is channel-<id> with edit, make-default/disable and delete controls."""
    default = factories.make_channel(setup, "email", name="First")
    other = factories.make_channel(setup, "email", name="Second")
    page = soup(console.get("/channels"))
    default_row = page.find(id=f"channel-{default.id}")
    other_row = page.find(id=f"channel-{other.id}")
    assert default_row.find("form", action=f"/channels/{default.id}/default") is None
    assert default_row.find("form", action=f"/channels/{default.id}/disable") is not None
    assert (
        other_row.find("form", action=f"/channels/{other.id}/default")["hx-post"]
        == f"/channels/{other.id}/default"
    )
    delete = other_row.find("a", attrs={"hx-delete": True})
    assert delete.get_text(" ", strip=True) == "Delete Second"
    assert delete["hx-delete"] == f"/channels/{other.id}/delete"
    assert delete["hx-confirm"].startswith("Delete the channel “Second”?")
    assert delete["href"].startswith(f"/channels/{other.id}/delete?next=")


def test_timestamps_do_not_leak_into_rows(console, setup):
    """Rows render for channels created in the same second (ties broken by id)."""
    now = utcnow()
    made = [factories.make_channel(setup, "email", name=f"Tie {n}") for n in range(4)]
    for channel in made:
        channel.created_at = now
    db.session.commit()
    seen = row_names(console.get("/channels", headers=HX))
    seen += row_names(
        console.get(
            soup(console.get("/channels", headers=HX)).find("a", rel="next")["href"], headers=HX
        )
    )
    assert sorted(seen) == sorted(c.name for c in made)
