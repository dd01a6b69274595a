"""The console's CSV import (DESIGN §10): upload checks with inline messages, a preview with
each row's errors (nothing saved), the background task chunk by chunk with real progress and
Cancel, the refused rows' report (formula cells escaped), tenant isolation, audit."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, select
from werkzeug.test import EnvironBuilder

from core import tasks
from core.db_types import utcnow
from core.extensions import db
from core.models import AuditEvent, Channel, ImportJob, PhoneNumber
from core.services import bulk, imports
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


# --- no job is ever stuck -------------------------------------------------------------------


def confirmed(console, body: bytes, kind="channels") -> tuple[str, str]:
    """Upload and confirm (no engine in tests: the job stays queued); (job url, job id)."""
    job_url = upload(console, body, kind=kind).headers["Location"]
    console.post(f"{job_url}/confirm", data={"csrf_token": csrf_token(console, job_url)})
    return job_url, job_url.rsplit("/", 1)[1]


def channel_names() -> list[str]:
    return sorted(db.session.scalars(select(Channel.name).where(Channel.channel_type == "email")))


def after_lease():
    return time_machine.travel(utcnow() + imports.LEASE + timedelta(seconds=1), tick=False)


def test_a_queued_job_never_handed_over_is_swept_after_its_lease(console, setup, monkeypatch):
    """The broker refused the hand-over: the job is queued. Within its lease the sweeper
    leaves it; after it, the sweeper hands it over again and it runs."""
    _, job_id = confirmed(console, (HEADER + channel_rows(setup, "AB")).encode())
    handed = []
    monkeypatch.setattr(tasks, "start_import", handed.append)
    assert tasks.sweep_outbox.run() == 0 and handed == []
    with after_lease():
        assert tasks.sweep_outbox.run() == 1
    assert handed == [job_id]
    assert imports.run_job(job_id) == "done"
    assert channel_names() == ["A", "B"]


class Killed(BaseException):
    """The worker process dies mid-chunk (nothing catches it, nothing is committed)."""


def test_a_killed_workers_job_resumes_from_its_counters_without_importing_twice(
    console, setup, monkeypatch
):
    """Killed during its second chunk: the job stays running with the first chunk committed;
    a second worker cannot take it while the lease holds; after it, the sweeper queues it again
    and the next worker imports the remaining rows, each exactly once."""
    monkeypatch.setattr(imports, "CHUNK_ROWS", 2)
    _, job_id = confirmed(console, (HEADER + channel_rows(setup, "ABCDEF")).encode())
    original = imports._run_batch
    calls = []

    def killed_in_second_chunk(*args, **kwargs):
        calls.append(1)
        results = original(*args, **kwargs)
        if len(calls) == 2:
            raise Killed
        return results

    monkeypatch.setattr(imports, "_run_batch", killed_in_second_chunk)
    with pytest.raises(Killed):
        imports.run_job(job_id)
    db.session.rollback()  # the dead worker's connection: its open transaction is gone
    monkeypatch.setattr(imports, "_run_batch", original)
    job = db.session.get(ImportJob, job_id)
    assert (job.status, job.processed_rows, job.created_rows) == ("running", 2, 2)
    assert channel_names() == ["A", "B"]
    assert imports.run_job(job_id) == "running"  # claimed: a second worker does not run it
    assert imports.stale_jobs() == []
    with after_lease():
        assert imports.stale_jobs() == [job_id]
        assert imports.run_job(job_id) == "done"
    db.session.expire_all()
    job = db.session.get(ImportJob, job_id)
    assert (job.status, job.processed_rows, job.created_rows, job.refused_rows) == (
        "done",
        6,
        6,
        0,
    )
    assert channel_names() == list("ABCDEF")  # every row once
    actions = db.session.scalars(select(AuditEvent.action)).all()
    assert actions.count("channel.create") == 6


def test_a_worker_that_lost_its_claim_writes_nothing_more(console, setup, monkeypatch):
    """The sweeper gave the job to another worker while this one was in a chunk: the chunk's
    writes and counters are rolled back, never committed beside the new worker's."""
    monkeypatch.setattr(imports, "CHUNK_ROWS", 2)
    _, job_id = confirmed(console, (HEADER + channel_rows(setup, "ABCD")).encode())
    original = imports._run_batch
    calls = []

    def requeued_during_second_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # as the sweeper does once the lease expired
            db.session.execute(
                imports.update(ImportJob)
                .where(ImportJob.id == job_id)
                .values(status="queued", claim_token=None)
            )
        return original(*args, **kwargs)

    monkeypatch.setattr(imports, "_run_batch", requeued_during_second_chunk)
    assert imports.run_job(job_id) == "lost"
    assert channel_names() == ["A", "B"]
    assert db.session.get(ImportJob, job_id).processed_rows == 2


def test_a_chunk_refused_by_the_database_is_retried_row_by_row(console, setup, monkeypatch):
    """Another tenant takes a number between the rules' check and the chunk's INSERT (the
    unique index refuses the whole chunk): the rows go again one by one, each in a savepoint;
    the taken one is refused with why, the others are imported, the job finishes."""
    other = factories.make_ready_tenant(factories.make_tenant(name="Racer"))
    factories.make_phone_number(other.tenant, other.sms_integration, phone_number="+16285550002")
    monkeypatch.setattr(bulk._NumberLookups, "in_use", lambda self, number: False)
    body = "phone_number,integration_id\n" + "".join(
        f"+1628555000{n},{setup.sms_integration.id}\n" for n in (1, 2, 3)
    )
    job_url, job_id = confirmed(console, body.encode(), kind="phone_numbers")
    tenant_id = setup.tenant.id
    assert imports.run_job(job_id) == "done"
    job = db.session.get(ImportJob, job_id)
    assert (job.status, job.created_rows, job.refused_rows) == ("done", 2, 1)
    ours = db.session.scalars(
        select(PhoneNumber.phone_number).where(PhoneNumber.tenant_id == tenant_id)
    ).all()
    assert {"+16285550001", "+16285550003"} <= set(ours) and "+16285550002" not in ours
    rows = list(csv.reader(io.StringIO(console.get(f"{job_url}/refused.csv").get_data(True))))
    assert [(r[0], r[1], r[-1]) for r in rows[1:]] == [
        ("3", "'+16285550002", imports.TAKEN_MEANWHILE)
    ]
    actions = db.session.scalars(select(AuditEvent.action)).all()
    assert actions.count("phone_number.create") == 3 + 2  # the racer and setups: 3; ours: 2


def test_an_unexpected_error_fails_the_job_with_a_message(console, setup, monkeypatch):
    """A crash in a chunk: that chunk is rolled back, the job is failed (not left running) and
    the result page says where it stopped; the chunks before it stay imported."""
    monkeypatch.setattr(imports, "CHUNK_ROWS", 2)
    job_url, job_id = confirmed(console, (HEADER + channel_rows(setup, "ABCD")).encode())
    original = imports._run_batch
    calls = []

    def crash_in_second_chunk(*args, **kwargs):
        calls.append(1)
        results = original(*args, **kwargs)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return results

    monkeypatch.setattr(imports, "_run_batch", crash_in_second_chunk)
    assert imports.run_job(job_id) == "failed"
    job = db.session.get(ImportJob, job_id)
    assert (job.status, job.processed_rows, job.lease_until) == ("failed", 2, None)
    assert channel_names() == ["A", "B"]
    page = soup(console.get(job_url))
    assert page.select_one("#import-status").get_text().strip() == "Import failed"
    assert page.select_one("#import-progress").get("hx-trigger") is None
    message = page.select_one("#import-error").get_text().strip()
    assert message.startswith("The import stopped on an unexpected error at rows 4–5")
    with after_lease():
        assert imports.stale_jobs() == []  # a failed job is finished, not swept
