"""GET /api/channels/{id} and GET /api/channels render stored rows (``serializers.
channel_row_to_api``): the exact text of the values whose rendering is easiest to get wrong
(timestamps with microseconds and at the day's last second, a channel never updated, metadata
with non-ASCII text, integers beyond 64 bits, nothing at all), and the Python work per row a
list page costs, counted (independent of the machine's load)."""

from __future__ import annotations

import cProfile
import json
import pstats
from datetime import UTC, datetime

from sqlalchemy import update

from core import schemas
from core.extensions import db
from core.models import Channel
from tests import factories

BIG = 2**70  # beyond 64 bits: orjson.loads would make it a float
METADATA = {
    "team": "Café ☕ 𝄞",
    "big": BIG,
    "neg": -(2**65),
    "ratio": 0.1,
    "none": None,
    "ключ": True,
}


def stored(channel_id: str, created_at: datetime, updated_at: datetime | None) -> None:
    db.session.execute(
        update(Channel)
        .where(Channel.id == channel_id)
        .values(created_at=created_at, updated_at=updated_at)
    )
    db.session.commit()


def test_stored_values_render_exactly(api, setup):
    rich = factories.make_channel(setup, "sms", metadata=METADATA)
    empty = factories.make_channel(setup, "email")  # no metadata: {}
    text = factories.make_channel(setup, "email", metadata={"team": "Café ☕ 𝄞", "ключ": "ü"})
    stored(
        rich.id,
        datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # the year's last instant
        datetime(2025, 2, 28, 23, 59, 59, 123456, tzinfo=UTC),
    )
    stored(
        empty.id,
        datetime(2024, 6, 30, 12, 0, 0, tzinfo=UTC),
        datetime(2024, 6, 30, 23, 59, 59, 500000, tzinfo=UTC),
    )
    stored(text.id, datetime(2025, 3, 1, 0, 0, 0, 1, tzinfo=UTC), None)  # never updated

    gets = {}
    for channel in (rich, empty, text):
        response = api.get(f"/api/channels/{channel.id}")
        assert response.status_code == 200
        gets[channel.id] = response.get_data()

    raw = gets[rich.id]
    assert b'"created_at":"2024-12-31T23:59:59Z","updated_at":"2025-02-28T23:59:59Z"}\n' in raw
    # orjson refuses the big integers: this body is json's (core.json_text), non-ASCII escaped.
    # (PostgreSQL's jsonb keeps its own key order: each pair is checked on its own.)
    for pair in (
        b'"team":"Caf\\u00e9 \\u2615 \\ud834\\udd1e"',
        b'"big":1180591620717411303424',
        b'"neg":-36893488147419103232',
        b'"ratio":0.1',
        b'"none":null',
        b'"\\u043a\\u043b\\u044e\\u0447":true',
    ):
        assert pair in raw, pair
    body = json.loads(raw)
    assert body["metadata"] == METADATA and type(body["metadata"]["big"]) is int

    raw = gets[empty.id]
    assert b'"metadata":{},' in raw
    assert b'"created_at":"2024-06-30T12:00:00Z","updated_at":"2024-06-30T23:59:59Z"}\n' in raw

    raw = gets[text.id]  # orjson's body: non-ASCII as UTF-8
    assert b'"team":"Caf\xc3\xa9 \xe2\x98\x95 \xf0\x9d\x84\x9e"' in raw
    assert b'"\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87":"\xc3\xbc"' in raw
    assert b'"created_at":"2025-03-01T00:00:00Z","updated_at":"2025-03-01T00:00:00Z"}\n' in raw

    # The list renders each channel as its GET does, newest first.
    page = api.get("/api/channels").get_json()
    assert page == {
        "data": [json.loads(gets[c.id]) for c in (text, rich, empty)],
        "next_cursor": None,
    }
    first = api.get("/api/channels?limit=1").get_data()
    assert first.startswith(b'{"data":[' + gets[text.id][:-1] + b'],"next_cursor":"')


def calls_of(request) -> int:
    """Python and C function calls the request makes (cProfile's count)."""
    profile = cProfile.Profile()
    response = profile.runcall(request)
    assert response.status_code == 200
    return pstats.Stats(profile).total_calls


def test_a_listed_row_costs_a_bounded_number_of_calls(api, setup, monkeypatch):
    """The calls a list page makes per row (a page of 50 against a page of 1, both with a next
    cursor, the same request otherwise): 11 on both databases (2026-12-03: the row, its two
    timestamps read, one formatted, its JSON value read, one render), against 30 (SQLite) and
    36 (PostgreSQL) when each field went through its own function, each timestamp was stripped
    of its zone before ``isoformat`` and psycopg's JSON loader guessed each value's encoding."""
    payloads = [setup.sms_payload(metadata={"n": n, "x": "é"}) for n in range(51)]
    response = api.post("/api/channels/bulk", json={"channels": payloads})
    assert response.status_code == 201
    monkeypatch.setattr(schemas, "CHECK_RENDERED", False)  # the test suite's check, not the app
    page, one = "/api/channels?limit=50", "/api/channels?limit=1"
    for _ in range(2):  # statements compiled, key cached
        api.get(page), api.get(one)
    per_row = (calls_of(lambda: api.get(page)) - calls_of(lambda: api.get(one))) / 49
    assert per_row <= 15, per_row
