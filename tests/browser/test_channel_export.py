""" "Download CSV" in a real browser: after live filtering (htmx swaps), the link carries the
filters and downloads the filtered channels."""

from __future__ import annotations

import csv
import io
import re

import pytest
from playwright.sync_api import Page, expect

from core.csv_cells import unescape_cell
from tests import factories

pytestmark = pytest.mark.browser


def test_download_csv_carries_the_live_filters(page: Page, sign_in, admin, setup):
    """Type a search and choose a type without a reload: the link follows, and clicking it
    downloads exactly the channels the table shows (a formula name escaped)."""
    for name in ("Support Email", "Billing Email", "Alerts SMS"):
        factories.make_channel(setup, "email" if "Email" in name else "sms", name=name)
    factories.make_channel(setup, "sms", name="=Billing SMS")
    sign_in(page, admin)
    link = page.get_by_role("link", name=re.compile("^Download CSV"))
    expect(link).to_have_attribute("href", "/channels/export.csv")

    page.get_by_label("Search").press_sequentially("billing", delay=30)
    page.get_by_label("Type", exact=True).select_option(label="SMS")
    expect(page.locator("#channel-rows > tr")).to_have_count(1)
    expect(link).to_have_attribute("href", re.compile(r"[?&]q=billing(&|$)"))
    expect(link).to_have_attribute("href", re.compile(r"[?&]channel_type=sms(&|$)"))

    with page.expect_download() as started:
        link.click()
    download = started.value
    assert re.fullmatch(r"channels-[a-z0-9-]+-\d{4}-\d{2}-\d{2}\.csv", download.suggested_filename)
    with open(download.path(), encoding="utf-8", newline="") as file:
        rows = list(csv.reader(io.StringIO(file.read(), newline="")))
    assert rows[0][:2] == ["id", "name"]
    assert [row[1] for row in rows[1:]] == ["'=Billing SMS"]
    assert unescape_cell(rows[1][1]) == "=Billing SMS"
