"""Tenants never see each other's data: another tenant's id behaves exactly like an unknown id,
in paths (404) and in bodies (422), and lists only ever hold the caller's own rows."""

from __future__ import annotations

import pytest

from tests import factories
from tests.api.assertions import assert_error

UNKNOWN_ID = "123e4567-e89b-42d3-a456-426614174000"


@pytest.fixture
def theirs(other_setup):
    """The other tenant's resources, a channel of each type included."""
    other_setup.email_channel = factories.make_channel(other_setup, "email", name="Support")
    other_setup.sms_channel = factories.make_channel(other_setup, "sms", name="Texts")
    return other_setup


# (method, path template, resource attribute of ``theirs``, JSON body)
ENDPOINTS = [
    ("get", "/api/channels/{}", "email_channel", None),
    ("patch", "/api/channels/{}", "email_channel", {"name": "Hijacked"}),
    ("delete", "/api/channels/{}", "sms_channel", None),
    ("get", "/api/integrations/{}", "email_integration", None),
    ("patch", "/api/integrations/{}", "sms_integration", {"status": "disabled"}),
    ("delete", "/api/integrations/{}", "email_integration", None),
    ("get", "/api/email_domains/{}", "domain", None),
    ("delete", "/api/email_domains/{}", "domain", None),
    ("post", "/api/email_domains/{}/verify", "domain", None),
    ("get", "/api/phone_numbers/{}", "number", None),
    ("delete", "/api/phone_numbers/{}", "number", None),
    ("post", "/api/phone_numbers/{}/release", "number", None),
]


@pytest.mark.parametrize(
    "method, template, attribute, body",
    ENDPOINTS,
    ids=[f"{m.upper()} {t.format('{id}')}" for m, t, _, _ in ENDPOINTS],
)
def test_another_tenants_id_in_the_path_is_an_unknown_id(
    api, setup, theirs, other_api, method, template, attribute, body
):
    """Same 404 status and byte-identical body as an id that does not exist; nothing changes."""
    their_id = getattr(theirs, attribute).id
    kwargs = {"json": body} if body is not None else {}
    state_before = other_api.get(
        template.format(their_id).removesuffix("/verify").removesuffix("/release")
    ).get_json()

    theirs_response = getattr(api, method)(template.format(their_id), **kwargs)
    unknown_response = getattr(api, method)(template.format(UNKNOWN_ID), **kwargs)

    assert_error(theirs_response, 404, "not_found")
    assert theirs_response.get_data() == unknown_response.get_data()
    assert theirs_response.status_code == unknown_response.status_code
    state_after = other_api.get(
        template.format(their_id).removesuffix("/verify").removesuffix("/release")
    ).get_json()
    assert state_after == state_before


def _error_of(response) -> dict:
    assert response.status_code == 422
    return response.get_json()


@pytest.mark.parametrize(
    "channel_type, field, attribute",
    [
        ("email", "integration_id", "email_integration"),
        ("email", "email_domain_id", "domain"),
        ("sms", "integration_id", "sms_integration"),
        ("sms", "phone_number_id", "number"),
    ],
)
def test_another_tenants_id_in_a_create_body_is_an_unknown_id(
    api, setup, theirs, channel_type, field, attribute
):
    """POST /api/channels referencing their integration/domain/number: the 422 of an unknown id."""
    payload = setup.email_payload if channel_type == "email" else setup.sms_payload
    their = _error_of(
        api.post(
            "/api/channels", json=payload(name="Same", **{field: getattr(theirs, attribute).id})
        )
    )
    unknown = _error_of(api.post("/api/channels", json=payload(name="Same", **{field: UNKNOWN_ID})))
    assert their == unknown
    assert list(their["error"]["fields"]) == [field]


@pytest.mark.parametrize(
    "channel_type, field, attribute",
    [
        ("email", "integration_id", "email_integration"),
        ("email", "email_domain_id", "domain"),
        ("sms", "phone_number_id", "number"),
    ],
)
def test_another_tenants_id_in_a_patch_body_is_an_unknown_id(
    api, setup, theirs, channel_type, field, attribute
):
    """PATCH /api/channels/{id} referencing their resources: the 422 of an unknown id."""
    channel = factories.make_channel(setup, channel_type)
    their = _error_of(
        api.patch(f"/api/channels/{channel.id}", json={field: getattr(theirs, attribute).id})
    )
    unknown = _error_of(api.patch(f"/api/channels/{channel.id}", json={field: UNKNOWN_ID}))
    assert their == unknown
    assert list(their["error"]["fields"]) == [field]


def test_another_tenants_integration_for_a_phone_number_is_an_unknown_id(api, setup, theirs):
    """POST /api/phone_numbers with their SMS integration: the 422 of an unknown integration."""
    their = _error_of(
        api.post(
            "/api/phone_numbers",
            json={"phone_number": "+14155550190", "integration_id": theirs.sms_integration.id},
        )
    )
    unknown = _error_of(
        api.post(
            "/api/phone_numbers",
            json={"phone_number": "+14155550190", "integration_id": UNKNOWN_ID},
        )
    )
    assert their == unknown
    assert list(their["error"]["fields"]) == ["integration_id"]


def _ids(api, path) -> set[str]:
    """Every id of a list, following the cursor to the end."""
    ids, cursor = set(), None
    while True:
        url = f"{path}?limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = api.get(url).get_json()
        ids |= {row["id"] for row in body["data"]}
        cursor = body["next_cursor"]
        if not cursor:
            return ids


@pytest.mark.parametrize(
    "path",
    [
        "/api/channels",
        "/api/integrations",
        "/api/email_domains",
        "/api/phone_numbers",
        "/api/audit_events",
    ],
)
def test_lists_hold_only_the_callers_rows(api, other_api, setup, theirs, path):
    """Each list shows exactly the caller's rows; the other tenant sees exactly theirs."""
    mine_channel = factories.make_channel(setup, "email", name="Support")  # same name: per tenant
    mine, their = _ids(api, path), _ids(other_api, path)
    assert mine and their and not mine & their
    rows = api.get(f"{path}?limit=200").get_json()["data"]
    assert {row["tenant_id"] for row in rows} == {setup.tenant.id}
    if path == "/api/channels":
        assert mine_channel.id in mine and theirs.email_channel.id in their


def test_filters_and_search_never_reach_other_tenants(api, setup, theirs):
    """q, is_default and audit filters by another tenant's resource id find nothing of theirs."""
    assert api.get("/api/channels?q=support").get_json()["data"] == []
    assert api.get("/api/channels?is_default=true").get_json()["data"] == []
    events = api.get(f"/api/audit_events?resource_id={theirs.email_channel.id}").get_json()["data"]
    assert events == []


def test_same_names_and_domains_live_side_by_side(api, setup, theirs):
    """Names are unique per tenant, so both tenants may call a channel "Support"."""
    response = api.post("/api/channels", json=setup.email_payload(name="Support"))
    assert response.status_code == 201
    assert response.get_json()["is_default"] is True  # their default is not ours


def test_their_changes_do_not_touch_our_defaults(api, other_api, setup, theirs):
    """Deleting their default hands over among their channels only."""
    ours = factories.make_channel(setup, "email", name="Ours")
    response = other_api.delete(f"/api/channels/{theirs.email_channel.id}")
    assert response.headers["Default-Handover"] == "none"
    assert api.get(f"/api/channels/{ours.id}").get_json()["is_default"] is True
