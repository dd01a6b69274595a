"""Console CSV import of channels and phone numbers (DESIGN §10): upload, preview, confirm,
progress (htmx polling) with Cancel, result with the refused rows' report; a template CSV.

The file is kept server-side in its import job (``core.services.imports``), with the tenant;
the background task (``core.tasks.run_import``) does the writes, through the bulk service.
"""

from __future__ import annotations

from flask import Response, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from werkzeug.exceptions import RequestEntityTooLarge

from blueprints.console import bp
from blueprints.console.context import can_write, current_actor, current_tenant, requires_write
from blueprints.console.responses import render_page, see_other
from blueprints.console.writes import console_write
from core.csv_cells import csv_lines
from core.extensions import db
from core.services import imports as service
from core.services.audit import Actor
from core.tasks import start_import

KINDS = "any(channels, phone_numbers)"
# The upload's request may carry the file and, beyond it, the form's fields and framing.
UPLOAD_OVERHEAD = 64 * 1024


def upload_request_max() -> int:
    return service.MAX_BYTES + UPLOAD_OVERHEAD


def _upload_limit():
    """The upload route reads up to ``upload_request_max()`` (the app's limit is 64 KiB). Set before
    CSRFProtect reads the form (an app-level hook, first in line), or its read would 413."""
    if request.endpoint != "console.imports_upload":
        return None
    request.max_content_length = upload_request_max()
    if (request.content_length or 0) > upload_request_max() and current_user.is_authenticated:
        # Said before anything reads the body (nothing is written: no CSRF token needed).
        if can_write():
            return _too_large(request.view_args["kind"])
    return None


@bp.record_once
def _install_upload_limit(state) -> None:
    state.app.before_request_funcs.setdefault(None, []).insert(0, _upload_limit)


class ImportForm(FlaskForm):
    """The CSV file to import."""

    file = FileField("CSV file")


def _kind_label(kind: str) -> str:
    return service.KIND_LABELS[kind]


@bp.get(f"/imports/<{KINDS}:kind>/new")
@requires_write
def imports_new(kind):
    """The upload form."""
    current_tenant()
    return render_template(
        "imports/new.html", form=ImportForm(), kind=kind, label=_kind_label(kind)
    )


@bp.post(f"/imports/<{KINDS}:kind>")
@requires_write
def imports_upload(kind):
    """Keep the upload as an import job and show its preview; a file that cannot be read is
    sent back with the reason beside the field (never a 500)."""
    tenant = current_tenant()
    try:
        form = ImportForm()
        valid = form.validate_on_submit()
    except RequestEntityTooLarge:  # a body without Content-Length that went over
        return _too_large(kind)
    if not valid:
        return _upload_again(form, kind, 400)
    upload = form.file.data
    if upload is None or not getattr(upload, "filename", ""):
        form.file.errors = ["Choose a CSV file."]
        return _upload_again(form, kind, 422)
    try:
        data = upload.stream.read(service.MAX_BYTES + 1)
    finally:
        upload.close()  # a large upload is a temporary file: gone now, not at garbage collection
    with console_write(form) as write:
        job = service.create_job(tenant.id, kind, upload.filename, data, current_actor())
    if write.failed:
        return _upload_again(form, kind, write.status)
    return see_other(url_for("console.imports_show", job_id=job.id))


def _too_large(kind):
    form = ImportForm(formdata=None)
    form.file.errors = [service.too_large_message()]
    return _upload_again(form, kind, 413)


def _upload_again(form, kind, status):
    return (
        render_template("imports/new.html", form=form, kind=kind, label=_kind_label(kind)),
        status,
    )


@bp.get(f"/imports/<{KINDS}:kind>/template.csv")
def imports_template(kind):
    """A CSV with the kind's columns and example rows."""
    current_tenant()
    body = "".join(csv_lines(service.COLUMNS[kind], service.EXAMPLES[kind]))
    return _csv(body, f"{kind}-template.csv")


def _csv(body: str, filename: str) -> Response:
    response = Response(body, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.get("/imports/<job_id>")
def imports_show(job_id):
    """The job: its preview (before confirming), its progress (htmx polls the fragment while
    it runs), or its result."""
    tenant = current_tenant()
    job = service.get_job(tenant.id, job_id)
    context = {"job": job, "label": _kind_label(job.kind)}
    if job.status == "previewed":
        header, rows = service.preview(job, Actor.system("preview"))
        job = service.get_job(tenant.id, job_id)  # the dry run ended the read transaction
        refused = sum(1 for row in rows if row.errors)
        context.update(job=job, header=header, rows=rows, refused=refused)
        return render_template("imports/preview.html", **context)
    return render_page("imports/show.html", "imports/_progress.html", **context)


@bp.post("/imports/<job_id>/confirm")
@requires_write
def imports_confirm(job_id):
    """Queue the import and hand it to the task engine."""
    tenant = current_tenant()
    job = service.get_job(tenant.id, job_id)
    with console_write():
        service.confirm(job, current_actor())
    start_import(job.id)
    return see_other(url_for("console.imports_show", job_id=job.id))


@bp.post("/imports/<job_id>/cancel")
@requires_write
def imports_cancel(job_id):
    """Stop the import after the chunk under way (rows already imported stay)."""
    tenant = current_tenant()
    job = service.get_job(tenant.id, job_id)
    with console_write():
        service.cancel(job, current_actor())
    db.session.expire_all()
    return see_other(url_for("console.imports_show", job_id=job_id))


@bp.get("/imports/<job_id>/refused.csv")
def imports_report(job_id):
    """The refused rows with their errors, as CSV (formula cells escaped)."""
    tenant = current_tenant()
    job = service.get_job(tenant.id, job_id)
    return _csv(service.refused_report(job), f"refused-{job.kind}-{job.id[:8]}.csv")
