"""The channel services and rules without HTTP: what the console and the API share."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from core import rules
from core.errors import ValidationFailed
from core.extensions import db
from core.services import channels as service
from tests import factories

ACTIVE = SimpleNamespace(status="active")
DISABLED = SimpleNamespace(status="disabled")
VERIFIED = SimpleNamespace(status="verified")
PENDING = SimpleNamespace(status="pending")
FAILED = SimpleNamespace(status="failed")
RELEASED = SimpleNamespace(status="released")


@pytest.mark.parametrize(
    "enabled, integration, domain, number, expected",
    [
        (True, ACTIVE, VERIFIED, None, "available"),
        (True, ACTIVE, PENDING, None, "pending_verification"),
        (True, ACTIVE, FAILED, None, "pending_verification"),
        (False, ACTIVE, VERIFIED, None, "disabled"),
        (False, ACTIVE, PENDING, None, "disabled"),
        (True, DISABLED, VERIFIED, None, "disabled"),
        (True, DISABLED, PENDING, None, "disabled"),
        (True, ACTIVE, None, ACTIVE, "available"),
        (True, ACTIVE, None, RELEASED, "disabled"),
        (False, ACTIVE, None, ACTIVE, "disabled"),
        (True, DISABLED, None, ACTIVE, "disabled"),
    ],
)
def test_derive_status(enabled, integration, domain, number, expected):
    """disabled beats pending_verification beats available, whatever made it so."""
    status = rules.derive_status(
        enabled=enabled, integration=integration, email_domain=domain, phone_number=number
    )
    assert status == expected


def test_create_then_delete_keeps_one_default_per_type(setup):
    """The service alone: first is default, delete hands over, outcome names the successor."""
    first = factories.make_channel(setup, "email")
    second = factories.make_channel(setup, "email")
    outcome = service.delete_channel(setup.tenant.id, first.id, factories.ACTOR)
    db.session.commit()
    assert outcome.new_default.id == second.id and outcome.lost_default is False
    assert service.has_default(setup.tenant.id, "email")


def test_services_flush_but_never_commit(setup):
    """A service's writes vanish on rollback: the caller owns the transaction."""
    service.create_channel(
        setup.tenant.id, setup.email_payload(name="Uncommitted"), factories.ACTOR
    )
    db.session.rollback()
    assert not rules.name_taken(setup.tenant.id, "Uncommitted")


def test_dry_run_writes_nothing_even_uncommitted(setup):
    """dry_run returns a channel without id and adds nothing to the session."""
    outcome = service.create_channel(
        setup.tenant.id, setup.sms_payload(name="Dry"), factories.ACTOR, dry_run=True
    )
    assert outcome.channel.id is None
    db.session.flush()
    assert not rules.name_taken(setup.tenant.id, "Dry")
    assert not service.has_default(setup.tenant.id, "sms")


def test_validation_lists_every_field(setup):
    """check_channel raises one ValidationFailed with every failing field."""
    with pytest.raises(ValidationFailed) as caught:
        rules.check_channel(setup.tenant.id, {"channel_type": "sms", "colour": "red"})
    assert set(caught.value.fields) == {
        "name",
        "integration_id",
        "send_from_phone_number",
        "phone_number_id",
        "colour",
    }


def test_channels_using_is_scoped_to_the_tenant(setup, other_tenant):
    """channels_using never returns another tenant's channels, even for a shared-looking value."""
    channel = factories.make_channel(setup, "sms")
    theirs = factories.make_ready_tenant(other_tenant)
    factories.make_channel(theirs, "sms")
    mine = service.channels_using(setup.tenant.id, integration_id=setup.sms_integration.id)
    assert [c.id for c in mine] == [channel.id]
    assert service.channels_using(other_tenant.id, integration_id=setup.sms_integration.id) == []
