"""The console's one write helper (``writes.console_write``): commits once, or rolls back and
shows the refusal on the form or in the flash area; and checks that write nothing."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from flask import get_flashed_messages
from sqlalchemy import event, func, select

from blueprints.console.forms import ChannelForm
from blueprints.console.writes import console_check, console_write
from core.errors import Conflict, NotFound, ValidationFailed
from core.extensions import db
from core.models import AuditEvent, Channel, Tenant
from tests import factories
from tests.console.helpers import csrf_token, field_errors, htmx_headers, soup

WRITES = ("INSERT", "UPDATE", "DELETE")


@contextmanager
def recorded():
    """The SQL statements sent and the commits made while the block runs."""
    seen = {"statements": [], "commits": 0}

    def on_statement(conn, cursor, statement, parameters, context, executemany):
        seen["statements"].append(" ".join(statement.split()).upper())

    def on_commit(conn):
        seen["commits"] += 1

    event.listen(db.engine, "before_cursor_execute", on_statement)
    event.listen(db.engine, "commit", on_commit)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", on_statement)
        event.remove(db.engine, "commit", on_commit)


def writes_in(statements: list[str]) -> list[str]:
    """The statements that change rows or take a row lock."""
    return [s for s in statements if s.startswith(WRITES) or "FOR UPDATE" in s]


def count(model) -> int:
    """How many rows ``model`` has."""
    return db.session.scalar(select(func.count()).select_from(model))


def a_tenant(name: str) -> Tenant:
    """A new tenant row (any write will do: the helper is what is tested)."""
    return Tenant(name=name, name_key=name.casefold(), slug=name.lower())


def a_form() -> ChannelForm:
    """A channel form without posted data (no CSRF check: the helper is tested, not the form)."""
    return ChannelForm(formdata=None, meta={"csrf": False})


# --- the helper itself --------------------------------------------------------------------------


def test_a_write_that_succeeds_is_committed_once(app):
    """Leaving the block normally commits exactly once; the result says it did not fail."""
    with app.test_request_context("/", method="POST"), recorded() as seen:
        with console_write(a_form()) as write:
            db.session.add(a_tenant("Kept"))
        assert not write.failed and write.status == 200
    assert seen["commits"] == 1
    db.session.rollback()
    assert db.session.scalar(select(Tenant.name).where(Tenant.slug == "kept")) == "Kept"


def test_a_refusal_lands_on_the_form_and_nothing_is_committed(app):
    """A ValidationFailed: rolled back, its fields on the form's fields, others as form errors."""
    form = a_form()
    refusal = ValidationFailed(
        "The channel could not be created.",
        {"name": ["This field is required."], "nonsense": ["Unknown field."]},
    )
    with app.test_request_context("/", method="POST"), recorded() as seen:
        with console_write(form) as write:
            db.session.add(a_tenant("Dropped"))
            db.session.flush()
            raise refusal
        assert write.failed and write.error is refusal and write.status == 422
        assert get_flashed_messages() == []
    assert seen["commits"] == 0
    assert form.name.errors == ["This field is required."]
    assert form.form_errors == ["Unknown field."]
    assert db.session.scalar(select(Tenant).where(Tenant.slug == "dropped")) is None


def test_a_refusal_without_fields_is_a_form_error(app):
    """A refusal naming no field (a conflict) becomes the form's error, with its status."""
    form = a_form()
    with app.test_request_context("/", method="POST"):
        with console_write(form) as write:
            raise Conflict("Someone else changed it.")
    assert write.status == 409
    assert form.form_errors == ["Someone else changed it."]


def test_fields_shown_elsewhere_stay_off_the_form(app):
    """``elsewhere``: those fields (and their dotted children) are the page's to render."""
    form = a_form()
    refusal = ValidationFailed(
        "The integration could not be created.",
        {"credentials.api_key": ["This field is required."], "name": ["Too long."]},
    )
    with app.test_request_context("/", method="POST"):
        with console_write(form, elsewhere=("credentials",)):
            raise refusal
    assert form.name.errors == ["Too long."]
    assert form.form_errors == []


def test_a_refusal_without_a_form_is_flashed(app):
    """Row actions: the message and its field messages in one flash, as an error."""
    with app.test_request_context("/", method="POST"):
        with console_write() as write:
            raise ValidationFailed("Cannot change it.", {"status": ["Its integration is off."]})
        assert write.failed
        assert get_flashed_messages(with_categories=True) == [
            ("error", "Cannot change it. Its integration is off.")
        ]


def test_report_false_leaves_the_refusal_to_the_view(app):
    """``report=False``: nothing flashed; the view reads ``write.error``."""
    with app.test_request_context("/", method="POST"):
        with console_write(report=False) as write:
            raise Conflict("Not now.")
        assert write.error.message == "Not now."
        assert get_flashed_messages() == []


@pytest.mark.parametrize("error", [NotFound("Channel not found."), RuntimeError("boom")])
def test_a_404_or_an_unexpected_error_propagates_after_a_rollback(app, error):
    """An unknown id is the error page's (404); anything unexpected too; neither is committed."""
    with app.test_request_context("/", method="POST"), recorded() as seen:
        with pytest.raises(type(error)), console_write(a_form()):
            db.session.add(a_tenant("Never"))
            db.session.flush()
            raise error
    assert seen["commits"] == 0
    assert db.session.scalar(select(Tenant).where(Tenant.slug == "never")) is None


def test_a_check_maps_the_refusal_without_committing_or_rolling_back(app):
    """``console_check``: errors on the form; the session is left as it was."""
    form = a_form()
    with app.test_request_context("/", method="POST"), recorded() as seen:
        with console_check(form) as check:
            raise ValidationFailed("No.", {"send_from_email": ["Not on the domain."]})
        assert check.failed
    assert seen["commits"] == 0 and seen["statements"] == []
    assert form.send_from_email.errors == ["Not on the domain."]


# --- through the console's routes ---------------------------------------------------------------


def channel_form(setup, token: str, **overrides) -> dict:
    """What the new-channel form posts for an email channel."""
    data = {"csrf_token": token, "type_fields_for": "email", **setup.email_payload(**overrides)}
    return data


def test_a_refused_form_re_renders_with_422_and_commits_nothing(console, setup):
    """Errors next to the fields, status 422, no commit, no channel, no audit row."""
    data = channel_form(setup, csrf_token(console, "/channels/new"), send_from_email="a@else.org")
    audit_rows = count(AuditEvent)
    with recorded() as seen:
        response = console.post("/channels/new", data=data)
    assert response.status_code == 422
    assert field_errors(response) == {
        "send_from_email": ["The address must be on the domain example.com."]
    }
    assert seen["commits"] == 0
    assert count(Channel) == 0 and count(AuditEvent) == audit_rows


def test_a_saved_form_commits_exactly_once(console, setup):
    """303 to the table; one commit holds the channel and its audit row."""
    data = channel_form(setup, csrf_token(console, "/channels/new"), name="Once")
    with recorded() as seen:
        response = console.post("/channels/new", data=data)
    assert response.status_code == 303
    assert seen["commits"] == 1
    assert db.session.scalar(select(Channel.name)) == "Once"
    actions = db.session.scalars(
        select(AuditEvent.action).where(AuditEvent.resource_type == "channel")
    )
    assert list(actions) == ["channel.create"]


def test_a_refused_row_action_flashes_and_commits_nothing(console, setup, tenant):
    """Enabling a channel whose integration is disabled: the row comes back with the error."""
    channel = factories.make_channel(setup, "email", name="Mail")
    factories.set_integration_status(tenant, setup.email_integration, "disabled")
    headers = htmx_headers(console)
    with recorded() as seen:
        response = console.post(f"/channels/{channel.id}/enable", headers=headers)
    assert response.status_code == 200
    flash_region = soup(response).find(id="flash")
    assert "Cannot enable: its integration is disabled." in flash_region.get_text()
    assert seen["commits"] == 0
    db.session.refresh(channel)
    assert channel.status == "disabled"


# --- checks that write nothing ------------------------------------------------------------------


def test_the_address_check_of_an_edit_writes_nothing(console, setup):
    """Checking a changed (valid) address runs the rules only: no UPDATE, no audit INSERT, no
    lock, no commit; before, the update was flushed with its audit row and rolled back."""
    channel = factories.make_channel(setup, "email", name="Mail")
    path = f"/channels/{channel.id}/edit"
    headers = htmx_headers(console, path)
    data = {"send_from_email": "billing@example.com", "email_domain_id": setup.domain.id}
    audit_rows = count(AuditEvent)
    with recorded() as seen:
        response = console.post(f"/channels/{channel.id}/check-address", data=data, headers=headers)
    assert response.status_code == 200
    assert field_errors(response) == {}
    assert writes_in(seen["statements"]) == []
    assert seen["commits"] == 0
    assert count(AuditEvent) == audit_rows
    db.session.refresh(channel)
    assert channel.send_from_email == "support@example.com"


def test_the_address_check_of_a_new_channel_writes_nothing(console, setup):
    """The new form's inline check: rules only, its error on the field, nothing sent to write."""
    headers = htmx_headers(console, "/channels/new")
    data = {"send_from_email": "a@elsewhere.org", "email_domain_id": setup.domain.id}
    with recorded() as seen:
        response = console.post("/channels/new/check-address", data=data, headers=headers)
    assert field_errors(response) == {
        "send_from_email": ["The address must be on the domain example.com."]
    }
    assert writes_in(seen["statements"]) == [] and seen["commits"] == 0


def test_an_edit_with_a_form_error_checks_the_rules_without_writing(console, setup):
    """A metadata key typed twice on an otherwise valid change: the form error shows, the rules
    run, and the change is not flushed (with its audit row) to be rolled back."""
    channel = factories.make_channel(setup, "email", name="Mail")
    path = f"/channels/{channel.id}/edit"
    data = {
        "csrf_token": csrf_token(console, path),
        "name": "Renamed",
        "integration_id": setup.email_integration.id,
        "send_from_email": "billing@example.com",
        "email_domain_id": setup.domain.id,
        "metadata-key": ["team", "team"],
        "metadata-value": ["a", "b"],
    }
    audit_rows = count(AuditEvent)
    with recorded() as seen:
        response = console.post(path, data=data)
    assert response.status_code == 422
    assert field_errors(response) == {"metadata": ["The key “team” appears more than once."]}
    assert writes_in(seen["statements"]) == [] and seen["commits"] == 0
    assert count(AuditEvent) == audit_rows
    db.session.refresh(channel)
    assert channel.name == "Mail"
