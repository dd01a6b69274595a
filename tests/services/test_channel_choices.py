"""What a channel may use: ``channel_choices`` offers exactly the rows ``check_channel`` accepts."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core import rules
from core.errors import ValidationFailed
from core.extensions import db
from core.models import EmailDomain, Integration, PhoneNumber
from core.services.channel_queries import channel_choices
from tests import factories


def refused_fields(tenant_id: str, data: dict) -> dict[str, list[str]]:
    """The fields ``check_channel`` refuses in ``data`` (a partial channel: others fail too)."""
    try:
        rules.check_channel(tenant_id, data)
    except ValidationFailed as exc:
        return exc.fields
    return {}


@pytest.fixture
def world(setup, tenant, other_tenant):
    """The tenant's rows of every kind the rules care about, and another tenant's."""
    factories.make_integration(tenant, "email", name="Off", status="disabled")
    factories.make_integration(tenant, "sms", name="Off SMS", status="disabled")
    factories.make_domain(tenant, "pending.example", verified=False)
    factories.make_phone_number(tenant, setup.sms_integration, capabilities=["voice"])
    factories.make_phone_number(tenant, setup.sms_integration, capabilities=["sms", "voice"])
    released = factories.make_phone_number(tenant, setup.sms_integration).phone_number
    factories.release_number(tenant, released)
    factories.make_ready_tenant(other_tenant, domain="other.example")
    return setup


@pytest.mark.parametrize("channel_type", ["email", "sms"])
def test_the_choices_are_exactly_what_the_rules_accept(app, world, tenant, channel_type):
    """Every row of every tenant: offered to ``tenant`` iff its id passes the channel rules."""
    choices = channel_choices(tenant.id, channel_type)
    lists = [
        (Integration, "integration_id", choices.integrations),
        (EmailDomain, "email_domain_id", choices.email_domains),
        (PhoneNumber, "phone_number_id", choices.phone_numbers),
    ]
    for model, field, offered in lists:
        offered_ids = {row.id for row in offered}
        for row in db.session.scalars(select(model)):
            # The other type's field is refused too ("Not allowed for email channels.").
            accepted = field not in refused_fields(
                tenant.id, {"channel_type": channel_type, field: row.id}
            )
            assert (row.id in offered_ids) == accepted, (field, row.id)
    assert choices.integrations and (choices.email_domains or choices.phone_numbers)


def test_the_choices_are_in_the_forms_order(app, world, tenant):
    """Integrations by name, domains by name, numbers by number."""
    email = channel_choices(tenant.id, "email")
    assert [i.name for i in email.integrations] == sorted(i.name for i in email.integrations)
    assert [d.domain for d in email.email_domains] == ["example.com", "pending.example"]
    sms = channel_choices(tenant.id, "sms")
    numbers = [n.phone_number for n in sms.phone_numbers]
    assert numbers == sorted(numbers) and len(numbers) == 2
    assert email.phone_numbers == [] and sms.email_domains == []


def test_an_edited_channel_keeps_what_it_uses(app, setup, tenant):
    """An SMS channel on a now disabled integration and a released number still lists both."""
    channel = factories.make_channel(setup, "sms", name="Alerts")
    factories.release_number(tenant, setup.number)
    factories.set_integration_status(tenant, setup.sms_integration, "disabled")
    fresh = channel_choices(tenant.id, "sms")
    assert fresh.integrations == [] and fresh.phone_numbers == []
    kept = channel_choices(tenant.id, "sms", current=channel)
    assert [i.id for i in kept.integrations] == [setup.sms_integration.id]
    assert [n.id for n in kept.phone_numbers] == [setup.number.id]
