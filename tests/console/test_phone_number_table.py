"""The phone number rule through the console: the channel form's "Send from number" and the
"Add phone number" form (national input with a country) accept and refuse as the API does
(tests/phone_number_table.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.extensions import db
from core.models import Channel, PhoneNumber
from tests import factories
from tests.console.helpers import csrf_token, field_errors, soup
from tests.phone_number_table import (
    ACCEPTED_NATIONAL,
    REFUSED_NATIONAL,
    accepted,
    refused_e164,
)


def _new_sms_channel(console, setup, number: str, phone_number_id: str):
    return console.post(
        "/channels/new",
        data={
            "csrf_token": csrf_token(console, "/channels/new"),
            "name": "Table SMS",
            "channel_type": "sms",
            "type_fields_for": "sms",
            "integration_id": setup.sms_integration.id,
            "phone_number_id": phone_number_id,
            "send_from_phone_number": number,
        },
    )


def _add_number(console, setup, typed: str, country: str):
    return console.post(
        "/phone-numbers/new",
        data={
            "csrf_token": csrf_token(console, "/phone-numbers/new"),
            "country": country,
            "phone_number": typed,
            "integration_id": setup.sms_integration.id,
            "capabilities": "sms",
            "create_channel": "y",
        },
    )


@accepted()
def test_the_channel_form_takes_a_possible_number(console, setup, number):
    """The form creates the SMS channel on a number of the table (303, stored as typed)."""
    added = factories.make_phone_number(setup.tenant, setup.sms_integration, phone_number=number)
    response = _new_sms_channel(console, setup, number, added.phone_number.id)
    assert response.status_code == 303, field_errors(response)
    stored = db.session.scalar(select(Channel).where(Channel.name == "Table SMS"))
    assert stored.send_from_phone_number == number


@refused_e164()
def test_the_channel_form_refuses_the_number(console, setup, number, message):
    """Each refusal class shows its message beside "Send from number"; nothing is saved."""
    response = _new_sms_channel(console, setup, number, setup.number.id)
    assert response.status_code == 422
    assert field_errors(response)["send_from_phone_number"] == [message]
    assert db.session.scalar(select(Channel).where(Channel.name == "Table SMS")) is None


@pytest.mark.parametrize(("typed", "country", "stored"), ACCEPTED_NATIONAL)
def test_adding_a_number_typed_nationally(console, setup, typed, country, stored):
    """National input with a country (or a + number) is stored in E.164 with its channel."""
    response = _add_number(console, setup, typed, country)
    assert response.status_code == 303, field_errors(response)
    number = db.session.scalar(select(PhoneNumber).where(PhoneNumber.phone_number == stored))
    assert number is not None and number.tenant_id == setup.tenant.id
    assert db.session.scalar(select(Channel).where(Channel.phone_number_id == number.id))


@pytest.mark.parametrize(
    ("typed", "country", "message"),
    [(t, c, m) for t, c, _, m in REFUSED_NATIONAL],
    ids=[w for _, _, w, _ in REFUSED_NATIONAL],
)
def test_adding_a_number_is_refused_inline(console, setup, typed, country, message):
    """Each refusal class: 422, the message beside the number, what was typed kept."""
    before = db.session.scalar(select(db.func.count()).select_from(PhoneNumber))
    response = _add_number(console, setup, typed, country)
    assert response.status_code == 422
    assert field_errors(response)["phone_number"] == [message]
    assert soup(response).find("input", id="phone_number")["value"] == typed
    assert db.session.scalar(select(db.func.count()).select_from(PhoneNumber)) == before
