"""POST /api/channels/bulk and /api/phone_numbers/bulk (DESIGN §10): every item by the rules of a
single create and against the other items; atomic batches all or nothing; non-atomic batches
item by item; dry runs, idempotent replays, audit and webhook events, tenant isolation."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, insert, select

from core.extensions import db
from core.models import AuditEvent, Channel, Event, PhoneNumber
from core.services import audit as audit_module
from tests import factories
from tests.api.assertions import assert_error, database_state


@pytest.fixture(autouse=True)
def warm_key(api):
    """The key's first use is written now, not during a test's "nothing changed" window."""
    api.get("/api/channels")


def count(model, **where) -> int:
    query = select(func.count()).select_from(model)
    for column, value in where.items():
        query = query.where(getattr(model, column) == value)
    return db.session.scalar(query)


def bulk(api, items, path="/api/channels/bulk", key="channels", **options):
    headers = options.pop("headers", None)
    query = options.pop("query", "")
    return api.post(f"{path}{query}", json={key: items, **options}, headers=headers)


def test_atomic_batch_creates_every_channel_in_order(api, setup):
    """201 with every channel, in the request's order; one audit and one webhook event each."""
    items = [setup.email_payload(name=f"E{i}") for i in range(3)]
    items.append(setup.sms_payload(name="S0"))
    response = bulk(api, items)
    assert response.status_code == 201, response.get_json()
    data = response.get_json()["data"]
    assert [c["name"] for c in data] == ["E0", "E1", "E2", "S0"]
    assert all(c["id"] and c["status"] == "available" for c in data)
    # the tenant had no defaults: the first of each type became it, the others did not
    assert [c["is_default"] for c in data] == [True, False, False, True]
    for channel in data:
        assert api.get(f"/api/channels/{channel['id']}").get_json() == channel
    assert count(AuditEvent, action="channel.create") == 4
    assert count(Event, type="channel.created") == 4
    assert count(Event, type="channel.default_changed") == 2


def test_explicit_default_takes_over_the_tenants_default(api, setup):
    """is_default: true on an item clears the previous default, audited and announced."""
    old = factories.make_channel(setup, "email", name="Old default")
    assert old.is_default
    items = [setup.email_payload(name="A"), setup.email_payload(name="B", is_default=True)]
    data = bulk(api, items).get_json()["data"]
    assert [c["is_default"] for c in data] == [False, True]
    assert api.get(f"/api/channels/{old.id}").get_json()["is_default"] is False
    assert count(AuditEvent, action="channel.default_cleared") == 1
    listed = api.get("/api/channels?is_default=true&channel_type=email").get_json()["data"]
    assert [c["name"] for c in listed] == ["B"]


def test_auto_default_then_explicit_default_in_one_batch(api, setup):
    """The first item would become the default, a later explicit one takes it: one default."""
    items = [setup.sms_payload(name="A"), setup.sms_payload(name="B", is_default=True)]
    data = bulk(api, items).get_json()["data"]
    assert [c["is_default"] for c in data] == [False, True]


@pytest.mark.parametrize(
    ("make_items", "errors"),
    [
        pytest.param(
            lambda s: [s.email_payload(name="Same"), s.sms_payload(name="sAME")],
            {"channels.1.name": ["Repeated in this batch: item 0 has this name."]},
            id="name-repeated-case-insensitively",
        ),
        pytest.param(
            lambda s: [
                s.email_payload(name="A", is_default=True),
                s.email_payload(name="B"),
                s.email_payload(name="C", is_default=True),
            ],
            {
                "channels.2.is_default": [
                    "Only one email channel of a batch can be the default: item 0 is."
                ]
            },
            id="two-defaults-of-one-type",
        ),
        pytest.param(
            lambda s: [s.email_payload(name="Taken")],
            {"channels.0.name": ["A channel with this name already exists."]},
            id="name-taken-by-an-existing-channel",
        ),
        pytest.param(
            lambda s: [
                s.email_payload(name="Fine"),
                s.email_payload(name="Wrong", send_from_email="x@elsewhere.org"),
            ],
            {"channels.1.send_from_email": ["The address must be on the domain example.com."]},
            id="address-rule",
        ),
        pytest.param(
            lambda s: [s.sms_payload(name="A"), "not an object"],
            {"channels.1": ["Must be a JSON object."]},
            id="item-not-an-object",
        ),
        pytest.param(
            lambda s: [s.sms_payload(name="A", integration_id=s.email_integration.id)],
            {"channels.0.integration_id": ["This integration sends email, not sms."]},
            id="single-create-rule",
        ),
    ],
)
def test_atomic_batch_refused_saves_nothing(api, setup, make_items, errors):
    """Each rule and intra-batch conflict: 422 keyed by item and field, nothing saved."""
    factories.make_channel(setup, "email", name="Taken")
    before = database_state()
    response = bulk(api, make_items(setup))
    body = assert_error(response, 422, "validation_error")
    assert body["fields"] == errors
    assert "nothing was saved" in body["message"]
    assert database_state() == before


def test_non_atomic_batch_gives_each_item_its_result(api, setup):
    """atomic: false creates the valid items, each item has its status; refused ones say why."""
    items = [
        setup.email_payload(name="Good"),
        setup.email_payload(name="good"),
        setup.email_payload(name="Bad", email_domain_id="nope"),
        setup.sms_payload(name="Also good"),
    ]
    response = bulk(api, items, atomic=False)
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [(r["index"], r["status"]) for r in results] == [(0, 201), (1, 422), (2, 422), (3, 201)]
    assert results[1]["error"]["fields"] == {
        "name": ["Repeated in this batch: item 0 has this name."]
    }
    assert results[2]["error"]["code"] == "validation_error"
    assert "email_domain_id" in results[2]["error"]["fields"]
    assert count(Channel) == 2
    assert count(AuditEvent, action="channel.create") == 2
    assert count(Event, type="channel.created") == 2


def test_a_refused_item_does_not_claim_its_name(api, setup):
    """Non-atomic, in order: an earlier refused item does not block a later one's name."""
    items = [
        setup.email_payload(name="Name", integration_id="nope"),
        setup.email_payload(name="Name"),
    ]
    results = bulk(api, items, atomic=False).get_json()["results"]
    assert [r["status"] for r in results] == [422, 201]


def test_dry_run_checks_and_saves_nothing(api, setup):
    """?dry_run=true: 200 with what would be created (no ids), nothing written."""
    before = database_state()
    response = bulk(api, [setup.email_payload(name="A")], query="?dry_run=true")
    assert response.status_code == 200
    [preview] = response.get_json()["data"]
    assert "id" not in preview and preview["name"] == "A" and preview["is_default"] is True
    results = bulk(
        api, [setup.email_payload(name="A"), "x"], query="?dry_run=true", atomic=False
    ).get_json()["results"]
    assert [r["status"] for r in results] == [200, 422]
    assert database_state() == before


class Crash(RuntimeError):
    """The simulated failure."""


def test_failure_midway_rolls_the_whole_batch_back(api, setup, monkeypatch):
    """The channels are inserted, then writing their audit events fails: a 500 and nothing
    saved at all (no channel, no audit event, no webhook event, the default untouched)."""
    old = factories.make_channel(setup, "email", name="Old default")
    api.get("/api/channels")  # the key's first use is written now
    before = database_state()
    events_before = count(Event)
    original = audit_module.write
    seen = []

    def crash(*events, **options):
        if any(e["action"] == "channel.create" for e in events):
            seen.append(count(Channel))  # the channels were inserted by then
            raise Crash("midway")
        return original(*events, **options)

    monkeypatch.setattr(audit_module, "write", crash)
    items = [setup.email_payload(name=f"N{i}") for i in range(5)]
    items[3]["is_default"] = True
    assert_error(bulk(api, items), 500, "internal_error")
    assert seen == [1 + 5]
    assert database_state() == before
    assert count(Event) == events_before
    monkeypatch.undo()
    assert api.get(f"/api/channels/{old.id}").get_json()["is_default"] is True


def test_idempotent_replay_of_a_batch(api, setup):
    """The same key and body: the first response again, nothing created twice; another body:
    409."""
    items = [setup.email_payload(name=f"I{i}") for i in range(3)]
    headers = {"Idempotency-Key": "batch-1"}
    first = bulk(api, items, headers=headers)
    assert first.status_code == 201
    again = bulk(api, items, headers=headers)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert count(Channel) == 3
    other = bulk(api, items[:1], headers=headers)
    assert_error(other, 409, "idempotency_conflict")


def test_other_tenants_rows_are_unknown(api, setup, other_setup):
    """Another tenant's integration, domain and number behave as ids that do not exist."""
    items = [
        setup.email_payload(
            name="A",
            integration_id=other_setup.email_integration.id,
            email_domain_id=other_setup.domain.id,
        ),
        setup.sms_payload(
            name="B",
            phone_number_id=other_setup.number.id,
            send_from_phone_number=other_setup.number.phone_number,
        ),
    ]
    fields = assert_error(bulk(api, items), 422, "validation_error")["fields"]
    assert fields["channels.0.integration_id"] == ["Integration not found."]
    assert fields["channels.0.email_domain_id"] == ["Email domain not found."]
    assert fields["channels.1.phone_number_id"] == ["Phone number not found."]


def test_other_tenants_names_do_not_count(api, setup, other_setup):
    """A name used by another tenant is free here."""
    factories.make_channel(other_setup, "email", name="Shared")
    assert bulk(api, [setup.email_payload(name="Shared")]).status_code == 201


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"channels": []}, "channels", "Send at least one item."),
        ({"channels": {}}, "channels", "Must be a list of objects."),
        ({}, "channels", "This field is required."),
        ({"channels": [{}] * 1001}, "channels", "At most 1000 items per request."),
        ({"channels": [{}], "atomic": "yes"}, "atomic", None),
        ({"channels": [{}], "extra": 1}, "extra", "Unknown field."),
    ],
)
def test_batch_shape(api, setup, body, field, message):
    """The batch itself: a list of 1 to 1,000 items, atomic a boolean, nothing else."""
    response = api.post("/api/channels/bulk", json=body)
    fields = assert_error(response, 422, "validation_error")["fields"]
    assert field in fields
    if message:
        assert fields[field] == [message]


def test_a_thousand_channels_fit_in_the_body_limit(api, setup):
    """1,000 items (well over the API's 64 KiB) are read; the bulk limit is 4 MiB."""
    items = [setup.sms_payload(name=f"Bulk channel number {i:04d}") for i in range(1000)]
    response = bulk(api, items, query="?dry_run=true")
    assert response.status_code == 200
    assert len(response.get_json()["data"]) == 1000
    huge = api.post(
        "/api/channels/bulk",
        data=b'{"channels": ["' + b"x" * (5 * 1024 * 1024) + b'"]}',
        content_type="application/json",
    )
    assert_error(huge, 413, "payload_too_large")


def test_taken_names_are_found_across_the_lookup_chunks(api, setup, other_setup):
    """The names a batch would take are looked up 500 at a time: a taken name is refused in
    every chunk (first, middle, last by sort order), another tenant's same name is not."""
    taken = [f"Lookup {i:04d}" for i in (0, 499, 500, 501, 999)]
    for name in taken:
        factories.make_channel(setup, "sms", name=name)
    factories.make_channel(other_setup, "sms", name="Lookup 0250")
    db.session.commit()
    items = [setup.sms_payload(name=f"lookup {i:04d}") for i in range(1000)]
    results = bulk(api, items, atomic=False, query="?dry_run=true").get_json()["results"]
    refused = [r["index"] for r in results if r["status"] == 422]
    assert refused == [0, 499, 500, 501, 999]
    assert results[0]["error"]["fields"] == {"name": ["A channel with this name already exists."]}


def test_read_key_cannot_write_in_bulk(client, tenant, setup):
    """A read key: 403, as for single creates."""
    reader = factories.ApiClient(client, factories.make_api_key(tenant, scope="read"))
    assert_error(bulk(reader, [setup.email_payload()]), 403, "forbidden")


# --- phone numbers ------------------------------------------------------------------------------


def test_numbers_in_bulk_each_with_its_sms_channel(api, setup):
    """Each number gets its SMS channel (named after it), unless create_channel is false."""
    integration = setup.sms_integration.id
    items = [
        {"phone_number": "+16285550101", "integration_id": integration},
        {"phone_number": "+16285550102", "integration_id": integration, "create_channel": False},
        {"phone_number": "+16285550103", "integration_id": integration, "capabilities": ["voice"]},
    ]
    response = bulk(api, items, path="/api/phone_numbers/bulk", key="phone_numbers")
    assert response.status_code == 201, response.get_json()
    data = response.get_json()["data"]
    assert [n["phone_number"] for n in data] == [i["phone_number"] for i in items]
    assert data[0]["channel_id"] and data[1]["channel_id"] is None
    assert data[2]["channel_id"] is None
    channel = api.get(f"/api/channels/{data[0]['channel_id']}").get_json()
    assert channel["name"] == "SMS +16285550101"
    assert channel["is_default"] is True  # the tenant had no default SMS channel
    assert count(AuditEvent, action="phone_number.create") == 1 + 3  # the setup's number
    assert count(Event, type="phone_number.added") == 1 + 3
    assert count(Event, type="channel.created") == 1


@pytest.mark.parametrize(
    ("make_items", "errors"),
    [
        pytest.param(
            lambda s: [
                {"phone_number": "+16285550111", "integration_id": s.sms_integration.id},
                {"phone_number": " +16285550111", "integration_id": s.sms_integration.id},
            ],
            {"phone_numbers.1.phone_number": ["Repeated in this batch: item 0 has this number."]},
            id="number-twice",
        ),
        pytest.param(
            lambda s: [
                {"phone_number": s.number.phone_number, "integration_id": s.sms_integration.id}
            ],
            {"phone_numbers.0.phone_number": ["This number is already in use."]},
            id="number-in-use",
        ),
        pytest.param(
            lambda s: [{"phone_number": "+16285550112", "integration_id": s.email_integration.id}],
            {"phone_numbers.0.integration_id": ["Phone numbers need an SMS integration."]},
            id="integration-rule",
        ),
    ],
)
def test_number_batch_refused_saves_nothing(api, setup, make_items, errors):
    """Each rule and the number repeated in the batch: 422 keyed by item, nothing saved."""
    before = database_state()
    response = bulk(api, make_items(setup), path="/api/phone_numbers/bulk", key="phone_numbers")
    assert assert_error(response, 422, "validation_error")["fields"] == errors
    assert database_state() == before


def test_number_channel_names_stay_unique(api, setup):
    """A channel already named after a number: the new one gets a counter."""
    factories.make_channel(setup, "email", name="SMS +16285550121")
    items = [{"phone_number": "+16285550121", "integration_id": setup.sms_integration.id}]
    data = bulk(api, items, path="/api/phone_numbers/bulk", key="phone_numbers").get_json()["data"]
    channel = api.get(f"/api/channels/{data[0]['channel_id']}").get_json()
    assert channel["name"] == "SMS +16285550121 (2)"


def test_a_number_taken_by_another_request_meanwhile_is_a_conflict(
    api, setup, other_setup, monkeypatch
):
    """A number free when the batch was checked but added by another tenant before the batch's
    INSERT (numbers are unique platform-wide): 409 conflict, nothing of the batch saved."""
    from core.services import bulk as bulk_service

    integration = setup.sms_integration.id
    items = [
        {"phone_number": "+16285550121", "integration_id": integration},
        {"phone_number": "+16285550122", "integration_id": integration},
    ]
    write = bulk_service.insert_rows

    def another_request_first(connection, table, rows, **options):
        if table.name == "phone_numbers":  # the other tenant's row, there at the INSERT
            taken = {**rows[1], "id": str(uuid.uuid4()), "tenant_id": other_setup.tenant.id}
            taken["integration_id"] = other_setup.sms_integration.id
            connection.execute(insert(PhoneNumber.__table__), taken)
        return write(connection, table, rows, **options)

    monkeypatch.setattr(bulk_service, "insert_rows", another_request_first)
    before = database_state()
    response = bulk(api, items, path="/api/phone_numbers/bulk", key="phone_numbers")
    assert "Retry the batch" in assert_error(response, 409, "conflict")["message"]
    assert database_state() == before


def test_non_atomic_number_batch(api, setup):
    """Item by item: the good numbers are added, the refused ones say why."""
    integration = setup.sms_integration.id
    items = [
        {"phone_number": "+16285550131", "integration_id": integration},
        {"phone_number": "12", "integration_id": integration},
    ]
    response = bulk(api, items, path="/api/phone_numbers/bulk", key="phone_numbers", atomic=False)
    results = response.get_json()["results"]
    assert [r["status"] for r in results] == [201, 422], results
    assert results[0]["phone_number"]["channel_id"]
    assert "phone_number" in results[1]["error"]["fields"]
    assert count(PhoneNumber, phone_number="+16285550131") == 1


def test_number_dry_run(api, setup):
    """A dry run shows each number and the channel it would get; nothing saved."""
    before = database_state()
    items = [{"phone_number": "+16285550141", "integration_id": setup.sms_integration.id}]
    response = bulk(
        api, items, path="/api/phone_numbers/bulk", key="phone_numbers", query="?dry_run=true"
    )
    assert response.status_code == 200
    [preview] = response.get_json()["data"]
    assert preview["channel"]["name"] == "SMS +16285550141"
    assert database_state() == before
