"""How console views write: one helper owns commit, rollback and where a refusal is shown.

It is to the console what ``blueprints.api.write_endpoint`` is to /api. A view calls the
service inside ``with console_write(form) as write:``; leaving the block normally commits once;
a ``ServiceError`` rolls back and lands on the form (field errors next to their fields, the
rest as form errors), or without a form in the flash area (row actions), and ``write.failed``
tells the view to answer with the form again (``write.status``: 422, or 409 for a conflict).
An unknown or foreign id (404) and any other exception are rolled back and propagate to the
error page, as before.

``console_check(form)`` is the same mapping for a check that writes nothing (the inline address
check, a form that already has coercion errors): it neither commits nor rolls back, so nothing
is flushed and discarded, and no audit row is written to be thrown away.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flask import flash
from flask_wtf import FlaskForm

from blueprints.console.forms import apply_service_errors
from core.errors import ServiceError
from core.extensions import db


@dataclass
class WriteResult:
    """What became of a console write: ``error`` is the service's refusal, None on success."""

    error: ServiceError | None = None

    @property
    def failed(self) -> bool:
        """Whether the service refused the write (nothing was committed)."""
        return self.error is not None

    @property
    def status(self) -> int:
        """The status a page answering this write carries: 200, or the refusal's (422, 409)."""
        return self.error.status if self.error is not None else 200


def error_text(exc: ServiceError) -> str:
    """A service error as one sentence for the flash area (its field messages appended)."""
    details = [message for messages in exc.fields.values() for message in messages]
    return exc.message + (" " + " ".join(details) if details else "")


@contextmanager
def console_write(
    form: FlaskForm | None = None, *, report: bool = True, elsewhere: tuple[str, ...] = ()
) -> Iterator[WriteResult]:
    """Run the block as one transaction: commit when it ends, roll back on a refusal.

    ``form``: where field errors go. Without one the refusal is flashed, unless ``report`` is
    false (the view shows ``write.error`` itself). ``elsewhere``: fields whose errors the page
    renders outside the form (e.g. an integration's ``credentials.*``).
    """
    result = WriteResult()
    try:
        yield result
    except ServiceError as exc:
        db.session.rollback()
        if exc.status == 404:
            raise
        result.error = exc
        if form is not None:
            apply_service_errors(form, exc, elsewhere=elsewhere)
        elif report:
            flash(error_text(exc), "error")
        return
    except BaseException:
        db.session.rollback()
        raise
    db.session.commit()


@contextmanager
def console_check(form: FlaskForm) -> Iterator[WriteResult]:
    """Run rules that write nothing: a refusal lands on ``form``; no commit, no rollback."""
    result = WriteResult()
    try:
        yield result
    except ServiceError as exc:
        if exc.status == 404:
            raise
        result.error = exc
        apply_service_errors(form, exc)
