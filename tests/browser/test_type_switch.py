"""The type switch never misses a change: a choice made before htmx is ready, twenty quick
switches, and a late answer all end with the fields of the type the select shows, and a submit
never sends one type's fields under the other type."""

from __future__ import annotations

import re
import time

import pytest
from flask import url_for
from playwright.sync_api import Page, Route, expect
from sqlalchemy import select

from core.extensions import db
from core.models import Channel
from tests.browser.conftest import end_test_transaction

pytestmark = pytest.mark.browser


class HeldScript:
    """Holds the first request for the htmx build until ``release()``: until then the page is
    parsed and interactive, but htmx (and the console's script, deferred after it) has not run.
    Later requests for it (the next page) are answered at once."""

    def __init__(self, page: Page, src: str, body: bytes):
        self.page = page
        self.body = body
        self.held: list[Route] = []
        self.released = False
        page.route(src, self._handle)

    def _fulfill(self, route: Route) -> None:
        route.fulfill(
            status=200,
            body=self.body,
            headers={
                "Content-Type": "text/javascript; charset=utf-8",
                "Access-Control-Allow-Origin": "*",
            },
        )

    def _handle(self, route: Route) -> None:
        if self.released or self.held:
            self._fulfill(route)
        else:
            self.held.append(route)

    def wait_held(self) -> None:
        """Until the browser has asked for htmx."""
        wait_for_route(self.page, self.held, "the page never asked for htmx")

    def release(self) -> None:
        self.released = True
        for route in self.held:
            self._fulfill(route)


def wait_for_route(page: Page, held: list[Route], failure: str) -> None:
    """Until a route handler has held a request: handlers run while Playwright processes
    events, i.e. inside its calls, so this yields to it in short steps (10 s at most)."""
    deadline = time.monotonic() + 10
    while not held:
        assert time.monotonic() < deadline, failure
        page.wait_for_timeout(10)


@pytest.fixture
def hold_htmx(app, htmx_js):
    """``hold_htmx(page)``: the next page's htmx arrives only when the test releases it."""
    return lambda page: HeldScript(page, app.config["HTMX_SRC"], htmx_js)


def _stored_channels() -> list[Channel]:
    end_test_transaction()  # see what the server committed
    return list(db.session.scalars(select(Channel).order_by(Channel.created_at)))


def _integration_label(integration) -> str:
    return f"{integration.name} ({integration.provider})"


def _fill_and_create(page: Page, setup, channel_type: str, name: str) -> None:
    """Fill the shown type's fields and submit; lands on the channels table."""
    page.get_by_label("Name").fill(name)
    if channel_type == "sms":
        page.get_by_label("Integration").select_option(
            label=_integration_label(setup.sms_integration)
        )
        page.get_by_label("Phone number").select_option(label=setup.number.phone_number)
        expect(page.get_by_label("Send from number")).to_have_value(setup.number.phone_number)
    else:
        page.get_by_label("Integration").select_option(
            label=_integration_label(setup.email_integration)
        )
        page.get_by_label("Email domain").select_option(label=setup.domain.domain)
        page.get_by_label("Send from address").fill("hello@example.com")
    page.get_by_role("button", name="Create channel").click()
    expect(page.locator("#flash")).to_contain_text(f"Channel “{name}” created.")


def _assert_stored(name: str, channel_type: str, setup) -> None:
    stored = {c.name: c for c in _stored_channels()}
    channel = stored[name]
    assert channel.channel_type == channel_type
    if channel_type == "sms":
        assert channel.phone_number_id == setup.number.id
        assert channel.send_from_email is None and channel.email_domain_id is None
    else:
        assert channel.email_domain_id == setup.domain.id
        assert channel.send_from_phone_number is None and channel.phone_number_id is None


def _expect_fields_of(page: Page, channel_type: str) -> None:
    """The select shows ``channel_type`` and exactly that type's fields are in the form."""
    expect(page.get_by_label("Channel type")).to_have_value(channel_type)
    expect(page.locator(f"#type-fields[data-channel-type={channel_type}]")).to_be_visible()
    expect(page.locator("#type-fields")).to_have_count(1)
    if channel_type == "sms":
        expect(page.get_by_label("Send from number")).to_be_visible()
        expect(page.get_by_label("Send from address")).to_have_count(0)
    else:
        expect(page.get_by_label("Send from address")).to_be_visible()
        expect(page.get_by_label("Send from number")).to_have_count(0)


def test_a_type_chosen_before_htmx_is_ready_gets_its_fields(page, sign_in, admin, setup, hold_htmx):
    """SMS chosen as soon as the form is interactive, before htmx has loaded: once htmx is
    ready the SMS fields come, and the channel is created as an SMS channel."""
    sign_in(page, admin)
    htmx = hold_htmx(page)
    page.goto(url_for("console.channels_new"), wait_until="commit")
    htmx.wait_held()
    page.get_by_label("Channel type").select_option("sms")
    # Nothing could answer that change yet: the email fields are still there.
    assert page.evaluate("typeof window.htmx") == "undefined"
    expect(page.locator("#type-fields")).to_have_attribute("data-channel-type", "email")

    htmx.release()
    _expect_fields_of(page, "sms")
    _fill_and_create(page, setup, "sms", "Early SMS")
    _assert_stored("Early SMS", "sms", setup)


@pytest.mark.parametrize("final", ["email", "sms"])
def test_twenty_rapid_switches_end_with_the_last_types_fields(page, sign_in, admin, setup, final):
    """Twenty switches in a row, ending on ``final``: the fields are ``final``'s, and the
    channel submitted is of that type with that type's fields."""
    sign_in(page, admin)
    page.goto(url_for("console.channels_new"))
    type_select = page.get_by_label("Channel type")
    order = ["sms", "email"] if final == "email" else ["email", "sms"]
    for i in range(20):
        type_select.select_option(order[i % 2])
    assert type_select.input_value() == final
    expect(page.locator("#channel_type.htmx-request")).to_have_count(0)
    _expect_fields_of(page, final)
    _fill_and_create(page, setup, final, f"Rapid {final}")
    _assert_stored(f"Rapid {final}", final, setup)


def test_a_late_answer_never_overwrites_a_newer_choice(page, sign_in, admin, setup):
    """SMS chosen and its answer held back, then email chosen: when the SMS answer finally
    comes it is not swapped in (the select says email), and the email fields stay."""
    sign_in(page, admin)
    page.goto(url_for("console.channels_new"))
    # Every type the fields were ever rendered for, from now on.
    page.evaluate(
        """() => {
          window.__typesShown = [];
          new MutationObserver(() => {
            const fields = document.getElementById("type-fields");
            if (fields) window.__typesShown.push(fields.getAttribute("data-channel-type"));
          }).observe(document.getElementById("channel-form"), {childList: true, subtree: true});
        }"""
    )
    held: list[Route] = []

    def hold_sms(route: Route) -> None:
        if "channel_type=sms" in route.request.url and not held:
            held.append(route)
        else:
            route.continue_()

    page.route(re.compile(r"/channels/type-fields\?"), hold_sms)
    type_select = page.get_by_label("Channel type")
    type_select.select_option("sms")
    wait_for_route(page, held, "the SMS fields were never asked for")
    type_select.select_option("email")
    with page.expect_response(lambda r: "channel_type=email" in r.url):
        with page.expect_response(lambda r: "channel_type=sms" in r.url):
            held[0].continue_()  # the late answer
    _expect_fields_of(page, "email")
    assert "sms" not in page.evaluate("window.__typesShown")
    _fill_and_create(page, setup, "email", "Late Email")
    _assert_stored("Late Email", "email", setup)


def test_a_submit_before_the_fields_arrived_is_never_saved_as_the_other_type(
    page, sign_in, admin, setup, hold_htmx, screenshot
):
    """SMS chosen and submitted while the email fields still show (no htmx yet): nothing is
    saved, the form comes back with the SMS fields and says why, then the SMS channel saves."""
    sign_in(page, admin)
    htmx = hold_htmx(page)
    page.goto(url_for("console.channels_new"), wait_until="commit")
    htmx.wait_held()
    page.get_by_label("Name").fill("Too Quick")
    page.get_by_label("Email domain").select_option(label=setup.domain.domain)
    page.get_by_label("Send from address").fill("quick@example.com")
    page.get_by_label("Channel type").select_option("sms")
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/channels/new")
    ) as posted:
        page.get_by_role("button", name="Create channel").click()
    assert posted.value.status == 422
    expect(page.get_by_role("alert")).to_contain_text("still showing the email fields")
    _expect_fields_of(page, "sms")
    expect(page.get_by_label("Name")).to_have_value("Too Quick")
    assert _stored_channels() == []
    htmx.release()
    page.wait_for_function("window.htmx !== undefined")  # the page that came back is live
    screenshot(page, "channel-new-type-mismatch")

    _fill_and_create(page, setup, "sms", "Too Quick")
    _assert_stored("Too Quick", "sms", setup)


def test_the_integration_type_chosen_before_htmx_is_ready_gets_its_providers(
    page, sign_in, admin, hold_htmx
):
    """The same for a new integration: SMS chosen before htmx loaded brings the SMS providers."""
    sign_in(page, admin)
    htmx = hold_htmx(page)
    page.goto(url_for("console.integrations_new"), wait_until="commit")
    htmx.wait_held()
    page.get_by_label("Channel type").select_option("sms")
    expect(page.locator("#credential-fields")).to_have_attribute("data-channel-type", "email")
    htmx.release()
    expect(page.locator("#credential-fields[data-channel-type=sms]")).to_be_visible()
    providers = page.get_by_label("Provider").locator("option")
    expect(providers.filter(has_text="Twilio")).to_have_count(1)
    expect(providers.filter(has_text="SendGrid")).to_have_count(0)


def test_a_submit_while_the_fields_are_on_their_way_waits_for_them(page, sign_in, admin, setup):
    """With htmx running, Create clicked while the SMS fields are still on their way: the
    browser does not submit (the page says why), and the SMS fields then arrive."""
    sign_in(page, admin)
    page.goto(url_for("console.channels_new"))
    held: list[Route] = []
    page.route(re.compile(r"/channels/type-fields\?"), lambda route: held.append(route))
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.get_by_label("Name").fill("Patient SMS")
    page.get_by_label("Channel type").select_option("sms")
    wait_for_route(page, held, "the SMS fields were never asked for")
    page.get_by_role("button", name="Create channel").click()
    expect(page.locator("#flash")).to_contain_text("still showing the fields of another choice")
    assert posts == []

    with page.expect_response(lambda r: "channel_type=sms" in r.url):
        held[0].continue_()
    _expect_fields_of(page, "sms")
    _fill_and_create(page, setup, "sms", "Patient SMS")
    _assert_stored("Patient SMS", "sms", setup)
