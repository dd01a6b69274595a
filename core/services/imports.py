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

Cells are read back through ``csv_cells.unescape_cell``, so a file downloaded from the product
imports unchanged. Blank cells are omitted (the rules then say "required" where it matters).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select, update

from core.csv_cells import csv_line, unescape_cell
from core.db_types import utcnow
from core.errors import ServiceError
from core.extensions import db
from core.models import ImportJob, User
from core.services import audit, bulk
from core.services.audit import Actor
from core.tenancy import get_for_tenant

MAX_BYTES = 10 * 1024 * 1024
MAX_ROWS = 50_000
CHUNK_ROWS = 1000
PREVIEW_ROWS = 100

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


def _header(kind: str, text: str) -> list[str]:
    """The header row, checked against the kind's columns."""
    try:
        header = next(csv.reader(io.StringIO(text)), None)
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
    are skipped."""
    reader = csv.reader(io.StringIO(text))
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


def run_job(job_id: str) -> str:
    """The background task's work: every remaining row, a chunk at a time (see the module doc).
    Returns the job's final status."""
    job = db.session.get(ImportJob, job_id)
    if job is None or job.status not in ("queued", "running"):
        return job.status if job else "missing"
    tenant_id, kind, text = job.tenant_id, job.kind, job.content
    actor = _job_actor(job)
    job.status = "running"
    job.started_at = job.started_at or utcnow()
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
            _finish(job_id, "cancelled")
            return "cancelled"
        items = [row_item(kind, header, cells) for _, cells in chunk]
        results = _run_batch(tenant_id, kind, items, actor, dry_run=False)
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
        db.session.execute(
            update(ImportJob)
            .where(ImportJob.id == job_id)
            .values(
                processed_rows=ImportJob.processed_rows + len(chunk),
                created_rows=ImportJob.created_rows + created,
                refused_rows=ImportJob.refused_rows + refused,
                refused_csv=ImportJob.refused_csv + "".join(report),
            )
        )
        db.session.commit()  # the chunk and the progress, together
        db.session.expunge_all()  # the chunk's objects are not needed again: memory stays flat
    _finish(job_id, "done")
    return "done"


def _finish(job_id: str, status: str) -> None:
    db.session.execute(
        update(ImportJob).where(ImportJob.id == job_id).values(status=status, finished_at=utcnow())
    )
    db.session.commit()


def refused_report(job: ImportJob) -> str:
    """The refused rows as CSV: the header line, then one line per refused row."""
    return csv_line(report_header(job.kind)) + job.refused_csv
