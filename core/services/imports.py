"""The console's CSV import (DESIGN §10): upload, preview, confirm, a background task, a report.

- ``create_job`` reads the upload (UTF-8, at most ``MAX_BYTES`` and ``MAX_ROWS`` rows, the
  kind's headers) and keeps the file server-side in an ``ImportJob`` row with its tenant, never
  in the cookie session; a file the import cannot read is an ``ImportRefused`` with a sentence
  for the upload field.
- ``preview`` runs the first ``PREVIEW_ROWS`` rows through the bulk service as a non-atomic dry
  run: the same rules and batch checks as the import itself, nothing saved.
- ``confirm`` queues the job; ``run_job`` (the task ``core.tasks.run_import``) goes through the
  rows in chunks of ``CHUNK_ROWS``, each through ``core.services.bulk`` (non-atomic: each row
  stands alone), each chunk committed with the job's counters, so the progress is real and a
  cancel (``cancel``) stops the job between two chunks. Rows already imported stay imported.
- Refused rows are kept as CSV (``refused_csv``): the row number, the row's cells and its
  errors, written through ``core.csv_cells`` (formula cells escaped), for the result page's
  download.

No job is ever stuck: ``confirm`` gives a queued job a lease (``LEASE``) to be started, a
worker takes it with a conditional UPDATE (``claim``: one worker per job, a claim token), and
each chunk's commit renews the lease, under that token. The sweeper (``stale_jobs``, run by
``channels.sweep_outbox``) queues again a job not started within its lease (its hand-over to the
broker failed) or whose worker stopped renewing it (killed), with a new token: the next worker
goes on from the committed counters, and a worker that lost its claim commits nothing more. A
chunk whose bulk write raises (a number taken meanwhile by another tenant) is written again row
by row, each in its own savepoint, a failing row refused; any other error marks the job
``failed`` with a sentence for the result page.

Cells are read back through ``csv_cells.unescape_cell``, so a file downloaded from the product
imports unchanged. Blank cells are omitted (the rules then say "required" where it matters).
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from core.csv_cells import csv_line, unescape_cell
from core.db_types import new_id, utcnow
from core.errors import Conflict, ServiceError
from core.extensions import db
from core.models import ImportJob, User
from core.services import audit, bulk
from core.services.audit import Actor
from core.tenancy import get_for_tenant

MAX_BYTES = 10 * 1024 * 1024
MAX_ROWS = 50_000
CHUNK_ROWS = 1000
PREVIEW_ROWS = 100
LEASE = timedelta(minutes=2)  # to start a queued job, or to commit a running job's next chunk
FAILED_MESSAGE = (
    "The import stopped on an unexpected error at rows {first:,}–{last:,}; the rows before "
    "them stay imported. Upload the refused and remaining rows again, or ask support."
)

TAKEN_MEANWHILE = "Added by another request meanwhile (a number is unique platform-wide)."

log = logging.getLogger("channels.imports")

COLUMNS = {
    "channels": (
        "name",
        "channel_type",
        "integration_id",
        "send_from_email",
        "email_domain_id",
        "send_from_phone_number",
        "phone_number_id",
        "is_default",
        "metadata",
    ),
    "phone_numbers": (
        "phone_number",
        "country",
        "integration_id",
        "capabilities",
        "create_channel",
    ),
}
REQUIRED_COLUMNS = {
    "channels": ("name", "channel_type", "integration_id"),
    "phone_numbers": ("phone_number", "integration_id"),
}
BOOLEAN_COLUMNS = ("is_default", "create_channel")
TRUE_WORDS = ("true", "yes", "1")
FALSE_WORDS = ("false", "no", "0")
EXAMPLES = {
    "channels": (
        (
            "Support Email",
            "email",
            "<integration id>",
            "support@example.com",
            "<domain id>",
            "",
            "",
            "true",
            "",
        ),
        (
            "Sales SMS",
            "sms",
            "<integration id>",
            "",
            "",
            "+15551234567",
            "<phone number id>",
            "",
            '{"team": "sales"}',
        ),
    ),
    "phone_numbers": (("+15551234567", "", "<integration id>", "sms", "true"),),
}
KIND_LABELS = {"channels": "channels", "phone_numbers": "phone numbers"}


class ImportRefused(ServiceError):
    """The file cannot be imported at all (encoding, headers, size): shown on the upload field."""

    status = 422
    code = "validation_error"

    def __init__(self, message: str):
        super().__init__("The file could not be imported.", {"file": [message]})


def too_large_message() -> str:
    size = f"{MAX_BYTES / 1024 / 1024:g} MiB" if MAX_BYTES >= 1024 * 1024 else f"{MAX_BYTES} bytes"
    return f"The file is larger than {size}."


def _text_of(data: bytes) -> str:
    """The file as text: UTF-8 (with or without a byte order mark), no NUL."""
    if not data.strip():
        raise ImportRefused("The file is empty.")
    if len(data) > MAX_BYTES:
        raise ImportRefused(too_large_message())
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportRefused(
            "The file is not UTF-8 text. Save it as “CSV UTF-8” and upload it again."
        ) from exc
    if "\x00" in text:
        raise ImportRefused("The file is not CSV text (it contains NUL characters).")
    return text


def _lines(text: str) -> Iterator[str]:
    """The text's lines one at a time (each with its ``\n``), for ``csv.reader``: it reads the
    file in place, where ``io.StringIO`` would first copy all of it into a buffer of four bytes
    per character (40 MiB for a 10 MiB file)."""
    start, size = 0, len(text)
    while start < size:
        end = text.find("\n", start)
        if end == -1:
            yield text[start:]
            return
        yield text[start : end + 1]
        start = end + 1


def _header(kind: str, text: str) -> list[str]:
    """The header row, checked against the kind's columns."""
    try:
        header = next(csv.reader(_lines(text)), None)
    except csv.Error as exc:
        raise ImportRefused(f"The file is not valid CSV: {exc}.") from exc
    if not header or not any(cell.strip() for cell in header):
        raise ImportRefused("The first row must name the columns.")
    names = [unescape_cell(cell).strip().lower() for cell in header]
    allowed = COLUMNS[kind]
    unknown = [name for name in names if name not in allowed]
    if unknown:
        raise ImportRefused(
            f"Unknown columns: {', '.join(unknown)}. The columns are: {', '.join(allowed)}."
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ImportRefused(f"Columns named twice: {', '.join(repeated)}.")
    missing = [name for name in REQUIRED_COLUMNS[kind] if name not in names]
    if missing:
        raise ImportRefused(f"Missing columns: {', '.join(missing)}.")
    return names


def read_rows(text: str) -> Iterator[tuple[int, list[str]]]:
    """(row number in the file, cells) of every data row; the header is row 1. Blank lines
    are skipped. The rows are read one at a time: only the chunk under way is in memory."""
    reader = csv.reader(_lines(text))
    next(reader, None)
    for cells in reader:
        if any(cell.strip() for cell in cells):
            yield reader.line_num, cells


def _count_rows(text: str) -> int:
    try:
        return sum(1 for _ in read_rows(text))
    except csv.Error as exc:
        raise ImportRefused(f"The file is not valid CSV: {exc}.") from exc


def row_item(kind: str, header: list[str], cells: list[str]) -> dict:
    """One row as the API body of a single create: blank cells omitted, booleans and metadata
    read from their text (anything else is left for the rules to refuse)."""
    item: dict = {}
    for name, raw in zip(header, cells, strict=False):
        value = unescape_cell(raw).strip()
        if not value:
            continue
        if name in BOOLEAN_COLUMNS and value.lower() in TRUE_WORDS + FALSE_WORDS:
            item[name] = value.lower() in TRUE_WORDS
        elif name == "metadata":
            try:
                item[name] = json.loads(value)
            except ValueError:
                item[name] = value
        elif name == "capabilities":
            item[name] = [
                part for part in value.replace(",", ";").replace(" ", ";").split(";") if part
            ]
        else:
            item[name] = value
    if len(cells) > len(header):
        item["_extra"] = "The row has more cells than the header."
    return item


def create_job(tenant_id: str, kind: str, filename: str, data: bytes, actor: Actor) -> ImportJob:
    """Keep an uploaded file as a previewed import job, or ImportRefused with why."""
    text = _text_of(data)
    _header(kind, text)
    rows = _count_rows(text)
    if rows == 0:
        raise ImportRefused("The file has a header but no rows.")
    if rows > MAX_ROWS:
        raise ImportRefused(f"At most {MAX_ROWS:,} rows per file (this one has {rows:,}).")
    job = ImportJob(
        tenant_id=tenant_id,
        kind=kind,
        status="previewed",
        filename=(filename or "upload.csv")[:255],
        content=text,
        total_rows=rows,
        processed_rows=0,
        created_rows=0,
        refused_rows=0,
        refused_csv="",
        cancel_requested=False,
        created_by=actor.id or "",
        created_at=utcnow(),
    )
    db.session.add(job)
    db.session.flush()
    return job


def get_job(tenant_id: str, job_id: str) -> ImportJob:
    """The tenant's import job, or NotFound (another tenant's is unknown)."""
    return get_for_tenant(ImportJob, tenant_id, job_id)


@dataclass
class PreviewRow:
    """A row of the preview: its number in the file, its cells, and the rules' errors."""

    number: int
    cells: list[str]
    errors: list[str]


def _run_batch(tenant_id: str, kind: str, items: list[dict], actor: Actor, dry_run: bool):
    """The rows through the bulk service, non-atomic: one result per row, in order. A row with
    more cells than the header is refused without being read (its cells would be misplaced)."""
    create = bulk.create_channels if kind == "channels" else bulk.add_phone_numbers
    readable = [item for item in items if "_extra" not in item]
    results = iter(
        create(tenant_id, readable, actor, atomic=False, dry_run=dry_run) if readable else []
    )
    return [
        bulk.ItemResult(index, {"": [item["_extra"]]}, "The row could not be imported.")
        if "_extra" in item
        else next(results)
        for index, item in enumerate(items)
    ]


def _messages(result) -> list[str]:
    """A refused row's errors as sentences: ``name: A channel with this name already exists.``"""
    return [
        f"{field}: {message}" if field else message
        for field, messages in (result.errors or {}).items()
        for message in messages
    ]


def preview(job: ImportJob, actor: Actor) -> tuple[list[str], list[PreviewRow]]:
    """The header and the first PREVIEW_ROWS rows with their errors (a dry run: nothing saved)."""
    header = _header(job.kind, job.content)
    rows = []
    for number, cells in read_rows(job.content):
        rows.append((number, cells))
        if len(rows) >= PREVIEW_ROWS:
            break
    items = [row_item(job.kind, header, cells) for _, cells in rows]
    results = _run_batch(job.tenant_id, job.kind, items, actor, dry_run=True)
    db.session.rollback()  # a dry run writes nothing; end its read transaction
    return header, [
        PreviewRow(number, cells, _messages(result))
        for (number, cells), result in zip(rows, results, strict=True)
    ]


def confirm(job: ImportJob, actor: Actor) -> None:
    """Queue a previewed job for the background task."""
    if job.status != "previewed":
        return
    job.status = "queued"
    job.lease_until = utcnow() + LEASE  # else the sweeper hands it over again
    audit.record(
        job.tenant_id,
        actor,
        "import.start",
        "import",
        job.id,
        {"kind": job.kind, "filename": job.filename, "rows": job.total_rows},
    )


def cancel(job: ImportJob, actor: Actor) -> None:
    """Ask the task to stop after the chunk under way (a queued job stops at once)."""
    if job.status not in ("previewed", "queued", "running"):
        return
    job.cancel_requested = True
    if job.status in ("previewed", "queued"):
        job.status = "cancelled"
        job.finished_at = utcnow()
    audit.record(job.tenant_id, actor, "import.cancel", "import", job.id, {})


def report_header(kind: str) -> list[str]:
    return ["row", *COLUMNS[kind], "errors"]


def _job_actor(job: ImportJob) -> Actor:
    """The admin who confirmed the import: every row it creates is audited as theirs."""
    user = db.session.get(User, job.created_by) if job.created_by else None
    if user is None:
        return Actor.system("import")
    return Actor("user", user.id, user.email)


def claim(job_id: str) -> str | None:
    """Take a queued job for this worker (committed): its claim token, or None when another
    worker has it (or it is finished). A conditional UPDATE: two workers never run one job."""
    now = utcnow()
    token = new_id()
    result = db.session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id, ImportJob.status == "queued")
        .values(status="running", claim_token=token, lease_until=now + LEASE)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return token if result.rowcount == 1 else None


def _expired(now: datetime):
    return or_(ImportJob.lease_until.is_(None), ImportJob.lease_until < now)


def stale_jobs(now: datetime | None = None) -> list[str]:
    """The sweeper: jobs queued and not started within their lease, or running and not renewed
    within it, queued again (a new lease, no claim) and returned to be handed over (committed)."""
    now = now or utcnow()
    stale = _expired(now), ImportJob.status.in_(("queued", "running"))
    ids = []
    for job_id in db.session.scalars(select(ImportJob.id).where(*stale)).all():
        result = db.session.execute(
            update(ImportJob)
            .where(ImportJob.id == job_id, *stale)
            .values(status="queued", claim_token=None, lease_until=now + LEASE)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:
            ids.append(job_id)
    db.session.commit()
    return ids


def _row_by_row(tenant_id: str, kind: str, items: list[dict], actor: Actor) -> list:
    """A chunk whose bulk write raised, again one row at a time, each in its own savepoint: a
    row the database refuses (its number taken meanwhile) is a refused row with why."""
    results = []
    for index, item in enumerate(items):
        try:
            with db.session.begin_nested():
                [result] = _run_batch(tenant_id, kind, [item], actor, dry_run=False)
        except (IntegrityError, Conflict):
            result = bulk.ItemResult(
                index, {"": [TAKEN_MEANWHILE]}, "The row could not be imported."
            )
        result.index = index
        results.append(result)
    return results


def run_job(job_id: str) -> str:
    """The background task's work: every remaining row, a chunk at a time (see the module doc).
    Returns the job's final status (``lost`` when another worker took the job over)."""
    token = claim(job_id)
    job = db.session.get(ImportJob, job_id)
    if job is None or token is None:
        return job.status if job else "missing"
    tenant_id, kind, text = job.tenant_id, job.kind, job.content
    actor = _job_actor(job)
    if job.started_at is None:
        job.started_at = utcnow()
    skip = job.processed_rows
    db.session.commit()
    header = _header(kind, text)
    columns = {name: position for position, name in enumerate(header)}
    chunk: list[tuple[int, list[str]]] = []
    rows = read_rows(text)
    position = 0
    while True:
        chunk = []
        for number, cells in rows:
            position += 1
            if position <= skip:
                continue
            chunk.append((number, cells))
            if len(chunk) >= CHUNK_ROWS:
                break
        if not chunk:
            break
        if db.session.scalar(select(ImportJob.cancel_requested).where(ImportJob.id == job_id)):
            _finish(job_id, token, "cancelled")
            return "cancelled"
        items = [row_item(kind, header, cells) for _, cells in chunk]
        try:
            try:
                with db.session.begin_nested():
                    results = _run_batch(tenant_id, kind, items, actor, dry_run=False)
            except (IntegrityError, Conflict):
                results = _row_by_row(tenant_id, kind, items, actor)
        except Exception:  # noqa: BLE001 - the job says it failed; the log has the details
            log.exception("import %s failed at rows %s-%s", job_id, chunk[0][0], chunk[-1][0])
            db.session.rollback()
            message = FAILED_MESSAGE.format(first=chunk[0][0], last=chunk[-1][0])
            _finish(job_id, token, "failed", error=message)
            return "failed"
        report = []
        created = refused = 0
        for (number, cells), result in zip(chunk, results, strict=True):
            if result.ok:
                created += 1
                continue
            refused += 1
            ordered = [
                cells[columns[c]] if c in columns and columns[c] < len(cells) else ""
                for c in COLUMNS[kind]
            ]
            ordered = [unescape_cell(cell) for cell in ordered]
            report.append(csv_line([number, *ordered, "; ".join(_messages(result))]))
        renewed = db.session.execute(
            update(ImportJob)
            .where(
                ImportJob.id == job_id,
                ImportJob.claim_token == token,
                ImportJob.status == "running",
            )
            .values(
                processed_rows=ImportJob.processed_rows + len(chunk),
                created_rows=ImportJob.created_rows + created,
                refused_rows=ImportJob.refused_rows + refused,
                refused_csv=ImportJob.refused_csv + "".join(report),
                lease_until=utcnow() + LEASE,
            )
            .execution_options(synchronize_session=False)
        )
        if renewed.rowcount != 1:  # the sweeper gave the job to another worker: write nothing
            db.session.rollback()
            log.warning("import %s: claim lost, chunk at row %s not written", job_id, chunk[0][0])
            return "lost"
        db.session.commit()  # the chunk and the progress, together
        db.session.expunge_all()  # the chunk's objects are not needed again: memory stays flat
    _finish(job_id, token, "done")
    return "done"


def _finish(job_id: str, token: str, status: str, error: str | None = None) -> None:
    db.session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id, ImportJob.claim_token == token)
        .values(status=status, finished_at=utcnow(), lease_until=None, error=error)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def refused_report(job: ImportJob) -> str:
    """The refused rows as CSV: the header line, then one line per refused row."""
    return csv_line(report_header(job.kind)) + job.refused_csv
