"""The seed page (shared/SEED.md): its two sample calls, sent verbatim against ``seed-demo`` data,
answer its sample responses; and the documented shape of any created channel."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from core.cli import DEMO_API_KEY, seed_demo_data
from core.extensions import db

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
SEED_COPY = Path(__file__).with_name("SEED.md")  # the page as shared/SEED.md prints it
SHARED_SEED = Path(__file__).resolve().parents[3] / "shared" / "SEED.md"
EMAIL_FIELDS = {
    "id",
    "tenant_id",
    "name",
    "channel_type",
    "integration_id",
    "send_from_email",
    "email_domain_id",
    "status",
    "is_default",
    "metadata",
    "created_at",
    "updated_at",
}
SMS_FIELDS = EMAIL_FIELDS - {"send_from_email", "email_domain_id"} | {
    "send_from_phone_number",
    "phone_number_id",
}


def _is_uuid4(value):
    return uuid.UUID(value).version == 4 and str(uuid.UUID(value)) == value


def _object_after(text: str, heading: str) -> str:
    """The JSON object printed after ``heading`` on the seed page, byte for byte."""
    start = text.index("{", text.index(heading))
    end = text.index("\n}", start) + 2
    return text[start:end]


def seed_samples() -> dict[str, tuple[bytes, dict]]:
    """Each sample call of the seed page: (request body as printed, sample response)."""
    text = SEED_COPY.read_text(encoding="utf-8")
    samples = {}
    for kind, call, answer in (
        ("email", "Sample API Call - Create Email Channel:", "Sample Response - Email Channel:"),
        ("sms", "Sample API Call - Create SMS Channel:", "Sample Response - SMS Channel:"),
    ):
        request_part = text[text.index(call) : text.index(answer)]
        assert "POST /api/channels\nContent-Type: application/json\n" in request_part
        body = _object_after(text, call).encode("utf-8")
        samples[kind] = (body, json.loads(_object_after(text, answer)))
    return samples


def test_the_copy_of_the_seed_page_is_the_seed_page():
    """tests/api/SEED.md is shared/SEED.md byte for byte (where shared/ sits beside the repo)."""
    if not SHARED_SEED.exists():
        pytest.skip(f"{SHARED_SEED} is not beside this clone (CI lays it there)")
    assert SEED_COPY.read_bytes() == SHARED_SEED.read_bytes()


@pytest.mark.parametrize("kind", ["email", "sms"])
def test_the_seed_sample_call_answers_the_seed_sample_response(app, client, kind):
    """Against seed-demo data, the seed's request body sent verbatim answers its sample response:
    every field and value but ``id`` and ``created_at`` (``updated_at`` may follow)."""
    seed_demo_data()
    db.session.commit()
    body, sample = seed_samples()[kind]
    response = client.post(
        "/api/channels",
        data=body,
        headers={"Authorization": f"Bearer {DEMO_API_KEY}", "Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    answer = response.get_json()
    assert set(answer) - {"updated_at"} == set(sample)
    for name, value in sample.items():
        if name not in ("id", "created_at"):
            assert answer[name] == value, name
    assert _is_uuid4(answer["id"])
    assert RFC3339.match(answer["created_at"])
    assert response.headers["Location"].endswith(f"/api/channels/{answer['id']}")
    assert (
        client.get(
            f"/api/channels/{answer['id']}", headers={"Authorization": f"Bearer {DEMO_API_KEY}"}
        ).get_json()
        == answer
    )


def test_both_seed_calls_in_the_seeds_order(app, client):
    """The email call, then the SMS call, on one demo database: both answer as the page says."""
    seed_demo_data()
    db.session.commit()
    for body, sample in seed_samples().values():
        response = client.post(
            "/api/channels",
            data=body,
            headers={"Authorization": f"Bearer {DEMO_API_KEY}", "Content-Type": "application/json"},
        )
        assert response.status_code == 201
        answer = response.get_json()
        assert {k: v for k, v in answer.items() if k not in ("id", "created_at", "updated_at")} == {
            k: v for k, v in sample.items() if k not in ("id", "created_at")
        }


def test_create_email_channel_matches_the_sample(api, setup):
    """POST /api/channels for an email channel on a verified domain: the sample's shape."""
    response = api.post("/api/channels", json=setup.email_payload(name="Support Email"))
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == EMAIL_FIELDS
    assert _is_uuid4(body["id"]) and body["tenant_id"] == setup.tenant.id
    assert body["name"] == "Support Email"
    assert body["send_from_email"] == "support@example.com"
    assert body["status"] == "available" and body["is_default"] is True
    assert body["metadata"] == {}
    assert RFC3339.match(body["created_at"])
    assert response.headers["Location"].endswith(body["id"])


def test_create_sms_channel_matches_the_sample(api, setup):
    """POST /api/channels for an SMS channel: the sms fields, never the email ones."""
    response = api.post("/api/channels", json=setup.sms_payload(name="Support SMS"))
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == SMS_FIELDS
    assert body["send_from_phone_number"] == setup.number.phone_number
    assert body["status"] == "available" and body["is_default"] is True
    assert _is_uuid4(body["id"]) and RFC3339.match(body["created_at"])
