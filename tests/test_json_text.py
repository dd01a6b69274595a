"""core.json_text: the JSON columns' text and the API's response bodies by orjson, with
``json``'s answer for whatever orjson refuses, so nothing accepted before fails now."""

from __future__ import annotations

import json

from core import json_text
from core.extensions import db
from core.models import Channel
from core.schemas.channels import EmailChannel


def test_dumps_is_json_and_falls_back_for_what_orjson_refuses():
    values = [
        {"name": "Café ☕", "n": 1.5, "ok": True, "none": None, "list": [1, "x"]},
        {"big": 2**70},  # beyond 64 bits: orjson refuses
        {1: "a non-string key"},  # orjson refuses; json writes "1"
    ]
    for value in values:
        assert json.loads(json_text.dumps(value)) == json.loads(json.dumps(value))
    assert json_text.dumps({"b": 1, "a": 2}) == '{"b":1,"a":2}'  # keys in the order given


def test_responses_are_compact_utf8_json_in_declared_order(api, setup):
    """A response body: compact, the channel's documented field order, non-ASCII text as
    UTF-8, a final newline (as Flask's own provider writes)."""
    response = api.post("/api/channels", json=setup.email_payload(name="Café ☕"))
    assert response.status_code == 201
    raw = response.get_data()
    assert raw.endswith(b"}\n") and b'"name":"Caf\xc3\xa9 \xe2\x98\x95"' in raw
    declared = list(EmailChannel.model_fields)  # the seed's order (core.schemas.channels)
    assert list(json.loads(raw)) == [name for name in declared if name in json.loads(raw)]
    assert len(json.loads(raw)) == 12


def test_a_number_beyond_64_bits_is_stored_and_answered(api, setup):
    """Metadata numbers are JSON numbers of any size: orjson refuses one beyond 64 bits, in the
    column and in the response, and ``json`` writes it instead."""
    payload = setup.sms_payload(metadata={"big": 2**70, "small": -(2**63)})
    response = api.post("/api/channels", json=payload)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["metadata"] == {"big": 2**70, "small": -(2**63)}
    db.session.expire_all()
    stored = db.session.get(Channel, response.get_json()["id"])
    assert stored.metadata_ == {"big": 2**70, "small": -(2**63)}
    again = api.get(f"/api/channels/{stored.id}")
    assert again.get_json()["metadata"] == {"big": 2**70, "small": -(2**63)}


def test_a_debug_app_answers_indented_json(app, api, setup):
    """Flask's debug form (indented, for people) is kept where Flask gives it."""
    app.debug = True
    try:
        response = api.get("/api/channels")
    finally:
        app.debug = False
    assert response.status_code == 200
    assert b'\n  "data"' in response.get_data()
