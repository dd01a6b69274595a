"""Console phone numbers: add with country + national number, the SMS channel it created,
release, delete."""

from __future__ import annotations

from sqlalchemy import select

from core.extensions import db
from core.models import Channel, PhoneNumber
from tests import factories
from tests.console.helpers import csrf_token, field_errors, htmx_headers, soup


def _add(console, **fields):
    data = {"csrf_token": csrf_token(console, "/phone-numbers/new")}
    data.update(fields)
    return console.post("/phone-numbers/new", data=data)


def test_form_lists_countries_and_sms_integrations(console, tenant):
    """The country select (US first by default) and only the tenant's active SMS integrations."""
    sms = factories.make_integration(tenant, "sms", name="Twilio main")
    factories.make_integration(tenant, "email", name="Mail")
    page = soup(console.get("/phone-numbers/new"))
    country = page.find("select", id="country")
    assert country.find("option", selected=True)["value"] == "US"
    assert country.find("option", value="GB").get_text() == "United Kingdom (+44)"
    options = [o.get_text() for o in page.find("select", id="integration_id").find_all("option")]
    assert options == ["Choose an integration…", f"{sms.name} (console)"]


def test_add_national_number_creates_channel_and_links_it(console, tenant):
    """ "(415) 555-0123" + US is stored as +14155550123; the page links to its SMS channel."""
    sms = factories.make_integration(tenant, "sms")
    response = _add(
        console,
        country="US",
        phone_number="(415) 555-0123",
        integration_id=sms.id,
        capabilities="sms",
        create_channel="y",
    )
    assert response.status_code == 303
    number = db.session.scalar(select(PhoneNumber).where(PhoneNumber.tenant_id == tenant.id))
    assert number.phone_number == "+14155550123"
    channel = db.session.scalar(select(Channel).where(Channel.phone_number_id == number.id))
    page = soup(console.get(response.headers["Location"]))
    assert "Its SMS channel “SMS +14155550123” was created." in page.find(id="flash").get_text()
    link = page.find("a", string="SMS +14155550123")
    assert link["href"] == f"/channels/{channel.id}/edit"
    listing = soup(console.get("/phone-numbers"))
    assert listing.find("tr", id=f"number-{number.id}").find("a", string=channel.name) is not None


def test_add_errors_inline_and_typed_number_kept(console, tenant):
    """Bad number and no integration: both errors next to their fields (422)."""
    response = _add(
        console, country="US", phone_number="555", integration_id="", capabilities="sms"
    )
    assert response.status_code == 422
    errors = field_errors(response)
    assert errors["phone_number"] == ["This is not a valid phone number."]
    assert errors["integration_id"] == ["This field is required."]
    assert soup(response).find("input", id="phone_number")["value"] == "555"


def test_release_disables_channel_and_delete_refused_when_used(console, tenant):
    """Release (htmx) marks it released and disables its channel; delete names the channel."""
    sms = factories.make_integration(tenant, "sms")
    outcome = factories.make_phone_number(tenant, sms, create_channel=True)
    number, channel = outcome.phone_number, outcome.channel
    refused = console.delete(
        f"/phone-numbers/{number.id}/delete", headers=htmx_headers(console, "/phone-numbers")
    )
    assert channel.name in soup(refused).find(id="flash").get_text()
    released = console.post(
        f"/phone-numbers/{number.id}/release", headers=htmx_headers(console, "/phone-numbers")
    )
    page = soup(released)
    assert "Released" in page.find("tr", id=f"number-{number.id}").get_text()
    assert f"Disabled channels: {channel.name}." in page.find(id="flash").get_text()
    db.session.refresh(channel)
    assert channel.status == "disabled"
    confirm = console.get(f"/phone-numbers/{number.id}/release")
    assert "Release number" in confirm.get_data(as_text=True)


def test_delete_unused_number_without_js(console, tenant):
    """No JS: the confirm page, then POST deletes and redirects."""
    number = factories.make_phone_number(tenant).phone_number
    confirm = console.get(f"/phone-numbers/{number.id}/delete")
    assert "This cannot be undone." in confirm.get_data(as_text=True)
    token = csrf_token(console, "/phone-numbers")
    response = console.post(f"/phone-numbers/{number.id}/delete", data={"csrf_token": token})
    assert response.status_code == 303
    assert db.session.get(PhoneNumber, number.id) is None


def test_csrf_and_isolation(console, other_tenant):
    """No CSRF token: 400; another tenant's number: 404."""
    theirs = factories.make_phone_number(other_tenant).phone_number
    assert (
        console.post("/phone-numbers/new", data={"phone_number": "+14155550123"}).status_code == 400
    )
    assert console.get(f"/phone-numbers/{theirs.id}").status_code == 404
    headers = htmx_headers(console, "/phone-numbers")
    assert console.post(f"/phone-numbers/{theirs.id}/release", headers=headers).status_code == 404


def test_the_numbers_list_pages_newest_first(app, console, tenant):
    """A tenant with many numbers: keyset pages of PAGE_SIZE, Next and Newer links, each row
    with its own SMS channel; a made-up cursor is a 400 page, not a 500."""
    app.config["PAGE_SIZE"] = 3
    sms = factories.make_integration(tenant, "sms")
    added = [
        factories.make_phone_number(
            tenant, sms, phone_number=f"+1415555{n:04d}", create_channel=True
        ).phone_number.phone_number
        for n in range(7)
    ]

    def page_of(url):
        page = soup(console.get(url))
        rows = page.select(".numbers-table tbody tr")
        numbers = [row.th.get_text(strip=True) for row in rows]
        channels = [
            row.find("td", attrs={"data-label": "SMS channel"}).get_text(strip=True) for row in rows
        ]
        links = {a.get_text(strip=True): a["href"] for a in page.select("nav.pager a")}
        return numbers, channels, links

    first, channels, links = page_of("/phone-numbers")
    assert first == added[::-1][:3] and set(links) == {"Next →"}
    assert channels == [f"SMS {number}" for number in first]  # each row its own channel
    second, _, links = page_of(links["Next →"])
    third, _, last_links = page_of(links["Next →"])
    assert second == added[::-1][3:6] and third == added[:1]
    assert set(last_links) == {"← Newer"}
    back, _, _ = page_of(last_links["← Newer"])
    assert back == second
    assert console.get("/phone-numbers?cursor=not-a-cursor").status_code == 400
