"""The console's CSV import (DESIGN §10): upload checks with inline messages, a preview with
each row's errors (nothing saved), the background task chunk by chunk with real progress and
Cancel, the refused rows' report (formula cells escaped), tenant isolation, audit."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import func, select
from werkzeug.test import EnvironBuilder

from core.extensions import db
from core.models import AuditEvent, Channel, ImportJob
from core.services import imports
from tests import factories
from tests.console.helpers import csrf_token, field_errors, soup

HEADER = "name,channel_type,integration_id,send_from_email,email_domain_id\n"


def channel_rows(setup, names) -> str:
    return "".join(
        f"{name},email,{setup.email_integration.id},info@example.com,{setup.domain.id}\n"
        for name in names
    )


def upload(console, data: bytes, kind="channels", filename="channels.csv"):
    """Submit the upload form as a browser would (the large body's temporary file closed)."""
    token = csrf_token(console, f"/imports/{kind}/new")
    builder = EnvironBuilder(
        path=f"/imports/{kind}",
        method="POST",
        data={"csrf_token": token, "file": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )
    try:
        return console.open(builder)
    finally:
        builder.close()


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        ("name,channel_type\n".encode("utf-16"), "The file is not UTF-8 text."),
        (b"\xff\xfename\n", "The file is not UTF-8 text."),
        (b"name,channel_type\nA,email\n", "Missing columns: integration_id."),
        (b"name,channel_type,integration_id,colour\nA,email,x,red\n", "Unknown columns: colour."),
        (b"name,channel_type,integration_id\n", "The file has a header but no rows."),
        (b"name,name,channel_type,integration_id\nA,A,email,x\n", "Columns named twice: name."),
    ],
)
def test_unreadable_files_are_refused_inline(console, setup, data, message):
    """Each kind of unreadable file: the upload form again, the reason beside the field."""
    response = upload(console, data)
    assert response.status_code == 422
    assert any(m.startswith(message) for m in field_errors(response)["file"])
    assert count(ImportJob) == 0


def test_too_large_and_too_many_rows(console, setup, monkeypatch):
    """Over 10 MiB (or the request limit) and over 50,000 rows: clear messages, not a 500."""
    monkeypatch.setattr(imports, "MAX_ROWS", 3)
    response = upload(console, (HEADER + channel_rows(setup, "ABCD")).encode())
    assert field_errors(response)["file"] == ["At most 3 rows per file (this one has 4)."]
    assert imports.too_large_message() == "The file is larger than 10 MiB."
    monkeypatch.setattr(imports, "MAX_BYTES", 1000)  # small: no temporary files in the test
    for size in (1010, 200_000):  # over the file's limit; over the request's limit too
        response = upload(console, HEADER.encode() + b"x" * size)
        assert response.status_code in (413, 422)
        assert field_errors(response)["file"] == ["The file is larger than 1000 bytes."]


def test_preview_shows_each_rows_errors_and_saves_nothing(console, setup):
    """The preview runs the rows through the batch rules (a repeated name, a foreign domain)."""
    factories.make_channel(setup, "email", name="Existing")
    body = HEADER + channel_rows(setup, ["One", "one", "Existing"])
    body += f"Bad,email,{setup.email_integration.id},x@elsewhere.org,{setup.domain.id}\n"
    channels_before = count(Channel)
    response = upload(console, body.encode())
    assert response.status_code == 303
    page = soup(console.get(response.headers["Location"]))
    rows = page.select("table.preview-table tbody tr")
    assert len(rows) == 4
    errors = [[li.get_text() for li in row.select(".row-errors li")] for row in rows]
    assert errors[0] == []
    assert errors[1] == ["name: Repeated in this batch: item 0 has this name."]
    assert errors[2] == ["name: A channel with this name already exists."]
    assert errors[3] == ["send_from_email: The address must be on the domain example.com."]
    assert "3 of the 4 rows shown have errors." in page.get_text()
    assert count(Channel) == channels_before


def test_import_runs_in_chunks_with_progress_and_report(console, setup, monkeypatch):
    """Confirm queues the job; the task imports chunk by chunk (progress committed with each);
    refused rows land in the report with their errors, formula cells escaped."""
    monkeypatch.setattr(imports, "CHUNK_ROWS", 2)
    body = HEADER + channel_rows(setup, ["A", "B", "=HYPERLINK(1)", "C", "=hyperlink(1)"])
    job_url = upload(console, body.encode()).headers["Location"]
    token = csrf_token(console, job_url)
    job_id = job_url.rsplit("/", 1)[1]
    assert console.post(f"{job_url}/confirm", data={"csrf_token": token}).status_code == 303
    page = soup(console.get(job_url))
    assert page.select_one("#import-progress")["hx-trigger"] == "every 1s"
    assert page.select_one("progress")["value"] == "0"
    seen = []
    original = imports._run_batch

    def spy(*args, **kwargs):
        seen.append(db.session.get(ImportJob, job_id).processed_rows)
        return original(*args, **kwargs)

    monkeypatch.setattr(imports, "_run_batch", spy)
    assert imports.run_job(job_id) == "done"
    assert seen == [0, 2, 4]  # each chunk started after the previous one was committed
    fragment = console.get(job_url, headers={"HX-Request": "true"})
    html = soup(fragment)
    assert html.select_one("html") is None  # the fragment alone
    assert html.select_one("#import-progress").get("hx-trigger") is None  # polling stops
    assert html.select_one("#import-created").get_text() == "4"
    assert html.select_one("#import-refused").get_text() == "1"
    report = console.get(f"{job_url}/refused.csv")
    assert report.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(report.get_data(as_text=True))))
    assert rows[0][0] == "row" and rows[0][-1] == "errors"
    assert [r[0] for r in rows[1:]] == ["6"]
    assert rows[1][1] == "'=hyperlink(1)"  # escaped: a spreadsheet shows it as text
    assert rows[1][-1] == "name: A channel with this name already exists."
    actions = db.session.scalars(select(AuditEvent.action)).all()
    assert actions.count("channel.create") == 4 and "import.start" in actions


def test_cancel_stops_between_chunks(console, setup, monkeypatch):
    """A cancel during a chunk: that chunk is kept, the next ones never run."""
    monkeypatch.setattr(imports, "CHUNK_ROWS", 2)
    job_url = upload(console, (HEADER + channel_rows(setup, "ABCDEF")).encode()).headers["Location"]
    job_id = job_url.rsplit("/", 1)[1]
    token = csrf_token(console, job_url)
    console.post(f"{job_url}/confirm", data={"csrf_token": token})
    original = imports._run_batch

    def cancel_during_first_chunk(*args, **kwargs):
        result = original(*args, **kwargs)
        if not kwargs.get("dry_run"):
            console.post(f"{job_url}/cancel", data={"csrf_token": token})
        return result

    monkeypatch.setattr(imports, "_run_batch", cancel_during_first_chunk)
    assert imports.run_job(job_id) == "cancelled"
    job = db.session.get(ImportJob, job_id)
    assert (job.status, job.processed_rows, job.created_rows) == ("cancelled", 2, 2)


def test_another_tenants_import_is_not_found(console, setup, other_tenant):
    """Another tenant's job, its report and its actions: 404, like an unknown id."""
    other = factories.make_ready_tenant(other_tenant)
    job = imports.create_job(
        other_tenant.id,
        "channels",
        "x.csv",
        (HEADER + channel_rows(other, "A")).encode(),
        factories.ACTOR,
    )
    db.session.commit()
    assert console.get(f"/imports/{job.id}").status_code == 404
    assert console.get(f"/imports/{job.id}/refused.csv").status_code == 404
    token = csrf_token(console, "/channels")
    assert console.post(f"/imports/{job.id}/confirm", data={"csrf_token": token}).status_code == 404


def test_template_csv_reimports(console, setup):
    """The template names every column; its header is accepted by the upload."""
    template = console.get("/imports/phone_numbers/template.csv")
    assert template.mimetype == "text/csv"
    header = template.get_data(as_text=True).splitlines()[0]
    assert header == ",".join(imports.COLUMNS["phone_numbers"])


def test_phone_numbers_import(console, setup):
    """Numbers import with their SMS channels, through the same bulk service."""
    body = "phone_number,integration_id\n"
    body += f"'+16285550001,{setup.sms_integration.id}\n+16285550001,{setup.sms_integration.id}\n"
    job_url = upload(console, body.encode(), kind="phone_numbers").headers["Location"]
    job_id = job_url.rsplit("/", 1)[1]
    console.post(f"{job_url}/confirm", data={"csrf_token": csrf_token(console, job_url)})
    assert imports.run_job(job_id) == "done"
    job = db.session.get(ImportJob, job_id)
    assert (job.created_rows, job.refused_rows) == (1, 1)
    assert db.session.scalar(
        select(func.count()).select_from(Channel).where(Channel.name == "SMS +16285550001")
    )
