"""GET /api/channels: filters, search, limit bounds, and keyset pagination newest first that
stays stable while rows are inserted between pages."""

from __future__ import annotations

import urllib.parse

import pytest

from core.database import read_alone
from core.extensions import db
from core.services import channel_queries
from core.services.channels import update_channel
from tests import factories


def names(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [row["name"] for row in response.get_json()["data"]]


@pytest.fixture
def catalogue(setup):
    """Channels of both types and every status, created oldest to newest."""
    pending = factories.make_domain(setup.tenant, "example.org", verified=False)
    made = [
        factories.make_channel(setup, "email", name="Support Email"),  # default email
        factories.make_channel(setup, "email", name="100% Promo"),
        factories.make_channel(setup, "email", name="a_b"),
        factories.make_channel(setup, "email", name="axb"),
        factories.make_channel(
            setup,
            "email",
            name="Pending news",
            email_domain_id=pending.id,
            send_from_email="n@example.org",
        ),
        factories.make_channel(setup, "sms", name="Alerts SMS"),  # default sms
        factories.make_channel(setup, "sms", name="Marketing SMS"),
    ]
    update_channel(setup.tenant.id, made[-1].id, {"status": "disabled"}, factories.ACTOR)
    db.session.commit()
    return made


def test_the_list_is_newest_first_with_the_documented_shape(api, catalogue):
    """{"data": [...], "next_cursor": null}, newest first."""
    body = api.get("/api/channels").get_json()
    assert set(body) == {"data", "next_cursor"}
    assert body["next_cursor"] is None
    assert [c["id"] for c in body["data"]] == [c.id for c in reversed(catalogue)]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("channel_type=sms", ["Marketing SMS", "Alerts SMS"]),
        ("channel_type=email", ["Pending news", "axb", "a_b", "100% Promo", "Support Email"]),
        ("status=disabled", ["Marketing SMS"]),
        ("status=pending_verification", ["Pending news"]),
        ("status=available", ["Alerts SMS", "axb", "a_b", "100% Promo", "Support Email"]),
        ("is_default=true", ["Alerts SMS", "Support Email"]),
        ("is_default=false", ["Marketing SMS", "Pending news", "axb", "a_b", "100% Promo"]),
        ("channel_type=email&is_default=true", ["Support Email"]),
        ("channel_type=sms&status=available", ["Alerts SMS"]),
        ("q=sms", ["Marketing SMS", "Alerts SMS"]),
        ("q=SMS", ["Marketing SMS", "Alerts SMS"]),
        ("q=eMaIl", ["Support Email"]),
        ("q=%25", ["100% Promo"]),
        ("q=_", ["a_b"]),
        ("q=a_b", ["a_b"]),
        ("q=%25%25", []),
        ("q=%5C", []),
        ("q=nothing-like-this", []),
        (
            "q=",
            [
                "Marketing SMS",
                "Alerts SMS",
                "Pending news",
                "axb",
                "a_b",
                "100% Promo",
                "Support Email",
            ],
        ),
        ("q=+news+", ["Pending news"]),
        ("q=alerts&channel_type=email", []),
    ],
)
def test_filters(api, catalogue, query, expected):
    """channel_type, status, is_default, q (case-insensitive; % and _ literal) combine."""
    assert names(api.get(f"/api/channels?{query}")) == expected


@pytest.mark.parametrize("limit", ["1", "200"])
def test_limit_bounds_are_inclusive(api, catalogue, limit):
    """limit=1 and limit=200 are valid."""
    assert len(names(api.get(f"/api/channels?limit={limit}"))) == min(int(limit), len(catalogue))


def test_the_default_limit_is_50(api, setup):
    """Without limit, pages hold 50 channels."""
    for n in range(51):
        factories.make_channel(setup, "email", name=f"Channel {n:02d}", is_default=False)
    body = api.get("/api/channels").get_json()
    assert len(body["data"]) == 50 and body["next_cursor"]
    rest = api.get(f"/api/channels?cursor={body['next_cursor']}").get_json()
    assert names_of(rest) == ["Channel 00"] and rest["next_cursor"] is None


def names_of(body) -> list[str]:
    return [row["name"] for row in body["data"]]


def test_pages_walk_every_channel_once_newest_first(api, catalogue):
    """limit=2 pages: together every channel, once each, in order; the last page has no cursor."""
    seen, cursor, pages = [], None, 0
    while True:
        body = api.get("/api/channels?limit=2" + (f"&cursor={cursor}" if cursor else "")).get_json()
        seen += [row["id"] for row in body["data"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [c.id for c in reversed(catalogue)]
    assert pages == 4


def test_pagination_keeps_the_filters(api, catalogue):
    """The cursor continues the same filtered list."""
    first = api.get("/api/channels?channel_type=email&limit=3").get_json()
    second = api.get(
        f"/api/channels?channel_type=email&limit=3&cursor={first['next_cursor']}"
    ).get_json()
    assert names_of(first) + names_of(second) == [
        "Pending news",
        "axb",
        "a_b",
        "100% Promo",
        "Support Email",
    ]
    assert second["next_cursor"] is None


def test_pagination_is_stable_under_inserts(api, setup):
    """Channels created between two page requests: no duplicates, no skips of the older ones."""
    older = [factories.make_channel(setup, "email", name=f"Old {n}") for n in range(5)]
    first = api.get("/api/channels?limit=2").get_json()
    newer = [factories.make_channel(setup, "email", name=f"New {n}") for n in range(3)]
    seen, cursor = [row["id"] for row in first["data"]], first["next_cursor"]
    while cursor:
        body = api.get(f"/api/channels?limit=2&cursor={cursor}").get_json()
        seen += [row["id"] for row in body["data"]]
        cursor = body["next_cursor"]
    assert len(seen) == len(set(seen))
    assert seen == [c.id for c in reversed(older)]
    fresh = names(api.get("/api/channels?limit=3"))
    assert fresh == [c.name for c in reversed(newer)]


def test_pagination_is_stable_under_deletes(api, setup):
    """Deleting the row a cursor points at does not break the walk."""
    made = [factories.make_channel(setup, "sms", name=f"SMS {n}") for n in range(4)]
    first = api.get("/api/channels?limit=2").get_json()
    api.delete(f"/api/channels/{first['data'][-1]['id']}")
    second = api.get(f"/api/channels?limit=2&cursor={first['next_cursor']}").get_json()
    assert [row["id"] for row in second["data"]] == [made[1].id, made[0].id]


# Names and terms where a substring test could go wrong: LIKE's wildcards and escape character,
# case beyond ASCII (casefold: "ß" is "ss", "İ" gains a combining dot), quotes, emoji.
ODD_NAMES = (
    "100% uptime", "100 percent", "under_score", "underXscore", "back\\slash", "Straße Ops",
    "STRASSE desk", "İstanbul relay", "istanbul plain", 'say "hi"', "rocket 🚀 alerts",
    "ÉCOLE", "petite école", "Ecole",
)  # fmt: skip
ODD_TERMS = ("%", "100%", "_", "under_", "\\", "strasse", "STRAẞE", "İst", "ist", '"hi"', "🚀",
             "École", "ecole", "e")  # fmt: skip


@pytest.mark.parametrize("term", ODD_TERMS)
def test_every_search_path_matches_the_casefolded_substring(api, setup, monkeypatch, term):
    """The trigram path, the walk (SQLite: ``instr`` over the index's entries) and PostgreSQL's
    LIKE all answer exactly the names whose casefolded form contains the casefolded term:
    wildcards and the escape character are literal, case is folded beyond ASCII."""
    for name in ODD_NAMES:
        factories.make_channel(setup, "sms", name=name)
    db.session.commit()
    expected = sorted(n for n in ODD_NAMES if term.casefold() in n.casefold())
    quoted = urllib.parse.quote(term)
    found = sorted(names(api.get(f"/api/channels?limit=100&q={quoted}")))
    assert found == expected
    monkeypatch.setattr(channel_queries, "SEARCH_FTS_MAX_MATCHES", 0)  # never the trigram path
    walked = sorted(names(api.get(f"/api/channels?limit=100&q={quoted}")))
    assert walked == expected


@pytest.fixture
def billing(setup, other_tenant):
    """Names with and without a common term, both types, a disabled one, another tenant's."""
    other = factories.make_ready_tenant(other_tenant, domain="other.example")
    factories.make_channel(other, "email", name="Billing elsewhere")
    made = []
    for n in range(9):
        name = f"BILLING run {n}" if n % 3 else f"Receipts {n}"
        made.append(factories.make_channel(setup, "sms" if n % 2 else "email", name=name))
    factories.make_channel(other, "sms", name="billing newest elsewhere")
    update_channel(setup.tenant.id, made[4].id, {"status": "disabled"}, factories.ACTOR)
    db.session.commit()
    return made


def pages(api, query: str, limit: int) -> list[str]:
    seen, cursor = [], None
    while True:
        url = f"/api/channels?limit={limit}&{query}" + (f"&cursor={cursor}" if cursor else "")
        body = api.get(url).get_json()
        seen += [row["id"] for row in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen


@pytest.mark.parametrize(
    "filters",
    ["", "&channel_type=sms", "&status=available", "&is_default=false", "&is_default=true"],
)
def test_a_common_term_walk_pages_as_the_substring_match(api, billing, monkeypatch, filters):
    """q= with more matches than the trigram path takes (the walk: on SQLite over the index's
    entries, then the page's rows) pages exactly as the plain match does: newest first, every
    match once, the filters and the tenant kept, whichever path the search takes."""
    everything = api.get(f"/api/channels?limit=200{filters}").get_json()["data"]
    expected = [row["id"] for row in everything if "billing" in row["name"].lower()]
    assert pages(api, f"q=billing{filters}", 2) == expected  # few matches: the trigram index
    statements = []
    monkeypatch.setattr(channel_queries, "SEARCH_FTS_MAX_MATCHES", 0)
    monkeypatch.setattr(
        channel_queries,
        "read_alone",
        lambda statement, params=None: (
            statements.append(str(statement)) or read_alone(statement, params)
        ),
    )
    for limit in (1, 2, 3, 50):
        assert pages(api, f"q=bIlLiNg{filters}", limit) == expected
    if db.engine.dialect.name == "sqlite":
        assert any("channels AS walked" in sql for sql in statements), statements
    if filters == "":
        assert len(expected) == 6
