"""A failure in the middle of a multi-row change leaves nothing half-written: the request is a
500 in the envelope and the database is exactly as before (rows, defaults, audit events)."""

from __future__ import annotations

import pytest

from core.services import audit as audit_module
from core.services import channels as channel_service
from core.services import phone_numbers as number_service
from tests import factories
from tests.api.assertions import assert_error, database_state


class Crash(RuntimeError):
    """The simulated failure."""


def crash_after(monkeypatch, module, name, keep=lambda result: result) -> list:
    """Let ``module.name`` do its writes, then fail; returns what it returned (to prove it ran),
    through ``keep``: what was written is read there, before the rollback takes it away (a row
    the failed transaction inserted no longer exists to be read afterwards)."""
    original = getattr(module, name)
    results = []

    def wrapper(*args, **kwargs):
        results.append(keep(original(*args, **kwargs)))
        raise Crash(f"after {name}")

    monkeypatch.setattr(module, name, wrapper)
    return results


def crash_on_audit(monkeypatch, action) -> list:
    """Fail when the audit event ``action`` is recorded (after the rows it describes were
    written); returns the actions recorded before it in the same request."""
    original = audit_module.write  # every event goes through it (``record`` too)
    recorded = []

    def wrapper(*events, **options):
        actions = [event["action"] for event in events]
        if action in actions:
            recorded.extend(actions[: actions.index(action)])
            raise Crash(f"while auditing {action}")
        recorded.extend(actions)
        return original(*events, **options)

    monkeypatch.setattr(audit_module, "write", wrapper)
    return recorded


@pytest.fixture
def defaults(api, setup):
    """Three email channels (the first one the default) and a warmed-up key."""
    made = [factories.make_channel(setup, "email", name=f"Channel {i}") for i in range(3)]
    api.get("/api/channels")  # the key's first use is written now, not during the test
    return made


def test_moving_the_default_is_all_or_nothing(api, monkeypatch, defaults):
    """The old default is cleared, then the new one fails to be recorded: nothing changed."""
    before = database_state()
    recorded = crash_on_audit(monkeypatch, "channel.default_set")
    response = api.patch(f"/api/channels/{defaults[2].id}", json={"is_default": True})
    assert_error(response, 500, "internal_error")
    assert recorded == ["channel.default_cleared"]  # the old default had been cleared
    assert database_state() == before


def test_deleting_the_default_is_all_or_nothing(api, monkeypatch, defaults):
    """Deleted and successor promoted, then a failure: the channel and its default are back."""
    before = database_state()
    promoted = crash_after(monkeypatch, channel_service, "_promote_successor")
    assert_error(api.delete(f"/api/channels/{defaults[0].id}"), 500, "internal_error")
    assert promoted[0].id == defaults[1].id
    assert database_state() == before
    monkeypatch.undo()
    assert api.get(f"/api/channels/{defaults[0].id}").get_json()["is_default"] is True


def test_disabling_the_default_is_all_or_nothing(api, monkeypatch, defaults):
    """Disabled and handed over, then a failure: still available and still the default."""
    before = database_state()
    promoted = crash_after(monkeypatch, channel_service, "_promote_successor")
    response = api.patch(f"/api/channels/{defaults[0].id}", json={"status": "disabled"})
    assert_error(response, 500, "internal_error")
    assert promoted[0].id == defaults[1].id
    assert database_state() == before


def test_disabling_an_integration_is_all_or_nothing(api, monkeypatch, setup, defaults):
    """Integration and its channels disabled, then a failure: all undone."""
    before = database_state()
    recorded = crash_on_audit(monkeypatch, "channel.status_changed")
    response = api.patch(
        f"/api/integrations/{setup.email_integration.id}", json={"status": "disabled"}
    )
    assert_error(response, 500, "internal_error")
    assert recorded == ["integration.disable"]
    assert database_state() == before


def test_adding_a_number_with_its_channel_is_all_or_nothing(api, monkeypatch, setup):
    """Number and its SMS channel written, then a failure: neither exists, no audit event."""
    api.get("/api/channels")
    before = database_state()
    created = crash_after(
        monkeypatch,
        number_service,
        "create_channel",
        keep=lambda outcome: (outcome.channel.id, outcome.channel.is_default),
    )
    response = api.post(
        "/api/phone_numbers",
        json={"phone_number": "+14155550170", "integration_id": setup.sms_integration.id},
    )
    assert_error(response, 500, "internal_error")
    channel_id, was_default = created[0]
    assert was_default is True  # the channel had been written as the default
    assert database_state() == before
    assert api.get(f"/api/channels/{channel_id}").status_code == 404


def test_a_failed_idempotent_request_is_not_stored(api, monkeypatch, setup):
    """A 500 is never replayed: once the fault is gone the same key and body create the channel."""
    api.get("/api/channels")
    before = database_state()
    recorded = crash_on_audit(monkeypatch, "channel.create")
    payload = setup.email_payload(name="Retry me")
    headers = {"Idempotency-Key": "retry-after-500"}
    assert_error(api.post("/api/channels", json=payload, headers=headers), 500, "internal_error")
    assert recorded == []
    assert database_state() == before
    monkeypatch.undo()
    retry = api.post("/api/channels", json=payload, headers=headers)
    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry.headers
