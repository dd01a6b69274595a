"""The console's CSV import in a real browser (htmx on): upload, preview with each row's errors,
start, the progress bar polled by htmx, the result and the refused rows' report; axe-clean."""

from __future__ import annotations

import csv
import io
import re

import pytest
from flask import url_for
from playwright.sync_api import expect

from core.services import imports
from tests.browser.conftest import end_test_transaction
from tests.browser.test_accessibility import _assert_no_violations, _audit

pytestmark = pytest.mark.browser


def test_import_channels_from_csv(
    app, open_page, axe_path, sign_in, admin, setup, screenshot, monkeypatch
):
    """Preview shows the refused row; Start shows the progress bar; once the task ran, the page
    (polling) shows the counts and the report downloads with the row's error, escaped."""
    monkeypatch.setattr(imports, "CHUNK_ROWS", 1)
    page = open_page(bypass_csp=True)  # so that axe can be injected
    rows = "name,channel_type,integration_id,send_from_email,email_domain_id\n"
    for name in ("Alpha", "Beta", "=alpha"):
        rows += f"{name},email,{setup.email_integration.id},hi@example.com,{setup.domain.id}\n"
    rows += f"=Alpha,email,{setup.email_integration.id},hi@example.com,{setup.domain.id}\n"
    sign_in(page, admin)
    page.goto(url_for("console.channels_index"))
    page.get_by_role("link", name="Import CSV").click()
    expect(page.get_by_role("heading", name="Import channels from CSV")).to_be_visible()
    found = _audit(page, axe_path, "import upload")
    page.get_by_label("CSV file").set_input_files(
        {"name": "channels.csv", "mimeType": "text/csv", "buffer": rows.encode()}
    )
    page.get_by_role("button", name="Upload and preview").click()
    expect(page.get_by_role("heading", name="Preview of channels.csv")).to_be_visible()
    refused = page.locator("tr.row-refused")
    expect(refused).to_have_count(1)
    expect(refused).to_contain_text("Repeated in this batch: item 2 has this name.")
    found += _audit(page, axe_path, "import preview")
    screenshot(page, "import-preview")
    page.get_by_role("button", name="Start the import").click()
    expect(page.get_by_role("heading", name="Waiting to start")).to_be_visible()
    bar = page.get_by_label(re.compile(r"rows processed"))
    expect(bar).to_have_attribute("value", "0")
    found += _audit(page, axe_path, "import progress")
    screenshot(page, "import-progress")

    end_test_transaction()
    job_id = page.url.rsplit("/", 1)[1]
    assert imports.run_job(job_id) == "done"  # the task (no engine in the test app)
    end_test_transaction()

    expect(page.get_by_role("heading", name="Import finished")).to_be_visible(timeout=10_000)
    expect(bar).to_have_attribute("value", "4")
    expect(page.locator("#import-created")).to_have_text("3")
    expect(page.locator("#import-refused")).to_have_text("1")
    found += _audit(page, axe_path, "import result")
    screenshot(page, "import-result")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the refused rows (CSV)").click()
    report = list(csv.reader(io.StringIO(download.value.path().read_text(encoding="utf-8"))))
    assert report[1][0] == "5"
    assert report[1][1] == "'=Alpha"
    # one row per chunk here: the earlier row was already imported when this one was checked
    assert report[1][-1] == "name: A channel with this name already exists."
    _assert_no_violations(found)
