"""The channels page's "Download CSV": a plain link carrying the table's filters, to a console
route that streams the API's CSV export (the same service), for admins and support staff."""

from __future__ import annotations

import csv
import io
from urllib.parse import parse_qs, urlsplit

import pytest

from core.csv_cells import unescape_cell
from core.services.channel_export import CSV_HEADER
from tests import factories
from tests.console.helpers import open_tenant_in_session, soup

HX = {"HX-Request": "true"}


@pytest.fixture
def channels(setup):
    """Two email channels and two SMS channels, one of them disabled."""
    made = {
        "Support Email": factories.make_channel(setup, "email", name="Support Email"),
        "Billing Email": factories.make_channel(setup, "email", name="Billing Email"),
        "Alerts SMS": factories.make_channel(setup, "sms", name="Alerts SMS"),
        "=Billing SMS": factories.make_channel(setup, "sms", name="=Billing SMS"),
    }
    factories.set_integration_status(setup.tenant, setup.sms_integration, "disabled")
    return made


def download_link(response) -> dict[str, list[str]]:
    """The query of the "Download CSV" link of a channels page or fragment."""
    link = soup(response).find(id="channels-download")
    assert link is not None and link.get_text(" ", strip=True).startswith("Download CSV")
    assert link.has_attr("download")
    url = urlsplit(link["href"])
    assert url.path == "/channels/export.csv"
    return parse_qs(url.query)


def names(response) -> list[str]:
    """The channel names of a CSV download, in order."""
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="channels-')
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True), newline="")))
    assert tuple(rows[0]) == CSV_HEADER
    return [unescape_cell(row[1]) for row in rows[1:]]


def test_the_link_carries_the_current_filters(console, channels):
    """Page and htmx fragment alike: the link's query is the table's type, status and search."""
    assert download_link(console.get("/channels")) == {}
    query = "channel_type=sms&status=disabled&q=billing"
    expected = {"channel_type": ["sms"], "status": ["disabled"], "q": ["billing"]}
    assert download_link(console.get(f"/channels?{query}")) == expected
    assert download_link(console.get(f"/channels?{query}", headers=HX)) == expected
    fragment = console.get("/channels?q=email", headers=HX)
    assert download_link(fragment) == {"q": ["email"]}


def test_no_link_when_nothing_is_listed(console, channels):
    """An empty result (no match) shows the empty state, without a download."""
    assert soup(console.get("/channels?q=nothing-matches")).find(id="channels-download") is None


def test_the_download_is_the_apis_csv_export(console, client, tenant, channels):
    """With the same filters, the console's file is byte for byte the API's CSV export."""
    key = factories.make_api_key(tenant, scope="read")
    for query in ("", "channel_type=sms", "status=disabled&q=billing", "q=email"):
        from_console = console.get(f"/channels/export.csv?{query}").get_data()
        from_api = client.get(
            f"/api/channels/export?format=csv&{query}", headers={"Authorization": f"Bearer {key}"}
        ).get_data()
        assert from_console == from_api, query


def test_the_download_follows_the_filters(console, channels):
    """Type, status and search narrow the file as they narrow the table; newest first."""
    assert names(console.get("/channels/export.csv")) == [
        "=Billing SMS",
        "Alerts SMS",
        "Billing Email",
        "Support Email",
    ]
    assert names(console.get("/channels/export.csv?channel_type=email")) == [
        "Billing Email",
        "Support Email",
    ]
    assert names(console.get("/channels/export.csv?status=disabled&q=billing")) == ["=Billing SMS"]
    # The table's own leniency: a value that is not a choice is no filter.
    assert len(names(console.get("/channels/export.csv?channel_type=fax&status=x"))) == 4


def test_formula_names_are_escaped_in_the_download(console, channels):
    """The name "=Billing SMS" is written '=Billing SMS (and the number '+1...)."""
    body = console.get("/channels/export.csv?q=billing%20sms").get_data(as_text=True)
    record = list(csv.reader(io.StringIO(body, newline="")))[1]
    cells = dict(zip(CSV_HEADER, record, strict=True))
    assert cells["name"] == "'=Billing SMS"
    assert cells["send_from_phone_number"].startswith("'+")


def test_support_staff_may_download(support_console, tenant, channels):
    """A read: support staff viewing the tenant download its channels (and see the link)."""
    open_tenant_in_session(support_console, tenant.id)
    assert download_link(support_console.get("/channels?channel_type=email")) == {
        "channel_type": ["email"]
    }
    assert names(support_console.get("/channels/export.csv?channel_type=email")) == [
        "Billing Email",
        "Support Email",
    ]


def test_signed_out_goes_to_sign_in(client, channels):
    """No session: the download redirects to the sign-in page, nothing is sent."""
    response = client.get("/channels/export.csv")
    assert response.status_code in (302, 303)
    assert urlsplit(response.headers["Location"]).path == "/login"


def test_another_tenants_admin_downloads_only_their_own(app, client, other_tenant, channels):
    """An admin of another tenant gets their own (empty) export, never this tenant's rows."""
    from tests.console.conftest import make_console_user
    from tests.console.helpers import sign_in

    make_console_user("other@example.org", "admin", other_tenant)
    assert sign_in(client, "other@example.org").status_code == 303
    assert names(client.get("/channels/export.csv")) == []
