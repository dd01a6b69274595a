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


def outcome(loads, data):
    """What ``loads(data)`` gives: the value (with its types, by ``repr``) or the error."""
    try:
        return "value", repr(loads(data))
    except Exception as exc:  # noqa: BLE001 - the error itself is compared
        return "error", type(exc), str(exc)


JSON_READS = [
    '{"big": 1180591620717411303424, "neg": -36893488147419103232, "f": 1.5, "e": 1e400}',
    '{"uni": "h\u00e9llo \u2603 \U0001d11e", "escaped": "\\u00e9\\ud834\\udd1e"}',
    '{"lone": "\\ud800", "nul": "\\u0000", "dup": 1, "dup": 2}',
    "{}",
    "[]",
    "[1, [2, {}]]",
    '"text"',
    "-0",
    "12345678901234567890123456789",
    "true",
    "false",
    "null",
    "NaN",
    "-Infinity",
    "Infinity",
    ' {"leading": "space"}',
    '{"trailing": "garbage"} x',
    '{"trailing": "space"} ',
    "[1]\n",
    "1 2",
    "  ",
    '{"broken": ',
    "",
    "\ufeff{}",
    "t",
    "{",
]


def json_inputs():
    for text in JSON_READS:
        yield text
        yield text.encode("utf-8", "surrogatepass")
        yield text.encode("utf-8-sig")
        for encoding in ("utf-16-le", "utf-16-be", "utf-16", "utf-32", "utf-32-le"):
            yield text.encode(encoding, "surrogatepass")
    yield b'"\xed\xa0\x80"'  # a surrogate in raw bytes: json.loads reads it (surrogatepass)
    yield b'{"bad": "\xff"}'  # not UTF-8
    yield b"{\x00"
    yield b"1"
    yield b"1\x00"
    yield bytearray(b'{"a": 1}')
    yield memoryview(b'{"a": 1}')


def test_loads_is_json_loads():
    """The JSON columns' reader (``json_text.loads``, the engine's ``json_deserializer``) gives
    ``json.loads``'s value or error for every input: integers of any size stay integers
    (``orjson.loads`` would read 2**70 as a float), non-ASCII text, byte order marks, UTF-16 and
    UTF-32, lone surrogates, invalid input."""
    for data in json_inputs():
        assert outcome(json_text.loads, data) == outcome(json.loads, data), data
    value = json_text.loads(b'{"big": 1180591620717411303424}')["big"]
    assert value == 2**70 and type(value) is int


def test_the_engine_reads_json_columns_with_loads(app):
    """Both backends read JSON columns through ``json_text.loads``: on PostgreSQL psycopg's JSON
    loaders call it (SQLAlchemy registers the engine's ``json_deserializer`` with them), on
    SQLite SQLAlchemy's JSON type does."""
    assert db.engine.dialect._json_deserializer is json_text.loads
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as connection:
            raw = connection.connection.dbapi_connection
            loader = raw.adapters.get_loader(raw.adapters.types["jsonb"].oid, 1)
            assert loader(0, raw).loads is json_text.loads
