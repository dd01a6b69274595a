"""Stored XSS in a real browser: hostile channel names and metadata render as text, run nothing.

Names are the payloads of tests/test_hostile_input.py; each would set ``window.__xss`` or open
a dialog if it ran. The table is loaded, searched live (an htmx swap of the rows) and an edit
form is opened; the harness also fails the test on any CSP violation or console error.
"""

from __future__ import annotations

import pytest
from flask import url_for
from playwright.sync_api import expect

from tests import factories
from tests.browser.conftest import end_test_transaction

pytestmark = pytest.mark.browser

PAYLOADS = [
    "<script>window.__xss=1</script>",
    '"><img src=x onerror="window.__xss=2">',
    "<svg/onload=window.__xss=3>",
    "'-alert(4)-'<b>bold</b>",
]


def test_hostile_names_render_as_text_and_never_run(page, sign_in, admin, setup):
    """The channels table, a live search and the edit form show payloads verbatim; none runs."""
    channels = [
        factories.make_channel(setup, "email", name=payload, metadata={"note": payload})
        for payload in PAYLOADS
    ]
    first_id = channels[0].id
    end_test_transaction()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    sign_in(page, admin)
    page.goto(url_for("console.channels_index"))
    for payload in PAYLOADS:
        expect(page.get_by_text(payload, exact=True).first).to_be_visible()

    page.get_by_label("Search").press_sequentially("<svg", delay=30)
    expect(page.locator("#channel-rows > tr")).to_have_count(1)
    expect(page.get_by_text(PAYLOADS[2], exact=True).first).to_be_visible()

    page.goto(url_for("console.channels_edit", channel_id=first_id))
    expect(page.get_by_label("Name")).to_have_value(PAYLOADS[0])

    assert page.evaluate("window.__xss") is None
    assert page.locator("b", has_text="bold").count() == 0
    assert dialogs == []
