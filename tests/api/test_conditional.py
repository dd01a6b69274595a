"""Conditional requests (core.conditional): a strong ETag on every GET of one resource, 304 on
If-None-Match without building the body, 412 on a stale If-Match for PATCH and DELETE, the
check and the write atomic, and another tenant's id a 404 whatever the headers say."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest

from core import conditional
from core.extensions import db
from core.models import Channel, PhoneNumber
from tests import factories
from tests.api.test_query_counts import counted_statements, fresh_session


@dataclass(frozen=True)
class Resource:
    """One kind of resource: its collection path, a fresh one's maker, a PATCH body (None if it
    has no PATCH)."""

    collection: str
    make: object
    patch: dict | None


def _channel(setup):
    return factories.make_channel(setup, is_default=False).id


def _integration(setup):
    return factories.make_integration(setup.tenant, "email").id


def _domain(setup):
    return factories.make_domain(setup.tenant, f"d{next(factories._counter)}.example").id


def _number(setup):
    return factories.make_phone_number(setup.tenant, setup.sms_integration).phone_number.id


def _endpoint(setup):
    endpoint, _secret = factories.make_webhook_endpoint(setup.tenant, "http://127.0.0.1:9/hook")
    return endpoint.id


RESOURCES = {
    "channel": Resource("/api/channels", _channel, {"name": "Renamed channel"}),
    "integration": Resource("/api/integrations", _integration, {"name": "Renamed integration"}),
    "email_domain": Resource("/api/email_domains", _domain, None),
    "phone_number": Resource("/api/phone_numbers", _number, None),
    "webhook_endpoint": Resource("/api/webhook_endpoints", _endpoint, {"description": "Renamed"}),
}
WITH_PATCH = [name for name, resource in RESOURCES.items() if resource.patch]


def _path(name, setup) -> str:
    resource = RESOURCES[name]
    return f"{resource.collection}/{resource.make(setup)}"


def _assert_tag(tag: str | None) -> None:
    assert tag is not None and tag.startswith('"') and tag.endswith('"') and len(tag) == 34


@pytest.mark.parametrize("name", RESOURCES)
def test_get_carries_a_strong_etag_and_304_on_match(api, setup, name):
    """GET/{id} carries a strong ETag; If-None-Match with it is a 304 with the tag, no body."""
    path = _path(name, setup)
    first = api.get(path)
    assert first.status_code == 200
    tag = first.headers["ETag"]
    _assert_tag(tag)
    assert api.get(path).headers["ETag"] == tag  # stable while nothing changes
    fresh_session()
    hit = api.get(path, headers={"If-None-Match": tag})
    assert hit.status_code == 304
    assert hit.headers["ETag"] == tag
    assert hit.data == b""


@pytest.mark.parametrize(
    "header",
    ["{tag}", "W/{tag}", '"nope", {tag}', "*", '"a",W/{tag} , "b"'],
    ids=["exact", "weak", "list", "star", "list-weak"],
)
def test_if_none_match_forms(api, setup, header):
    """A list of tags, a weak one (weak comparison, RFC 9110 §13.1.2) and * all match."""
    path = _path("channel", setup)
    tag = api.get(path).headers["ETag"]
    response = api.get(path, headers={"If-None-Match": header.format(tag=tag)})
    assert response.status_code == 304
    assert response.headers["ETag"] == tag


def test_if_none_match_mismatch_is_the_full_answer(api, setup):
    """A tag that is not the current one gets the full 200 with the current tag."""
    path = _path("channel", setup)
    tag = api.get(path).headers["ETag"]
    response = api.get(path, headers={"If-None-Match": '"0123456789abcdef0123456789abcdef"'})
    assert response.status_code == 200
    assert response.headers["ETag"] == tag
    assert response.get_json()["id"] == path.rsplit("/", 1)[1]


def test_304_builds_no_body(api, setup, monkeypatch):
    """The 304 neither loads the full row (one narrow query after the key) nor renders it."""
    path = _path("channel", setup)
    tag = api.get(path).headers["ETag"]
    rendered = []
    import blueprints.api.channels as routes

    monkeypatch.setattr(routes, "channel_to_api", lambda c: rendered.append(c) or {})
    fresh_session()
    with counted_statements() as statements:
        response = api.get(path, headers={"If-None-Match": tag})
    assert response.status_code == 304
    assert rendered == []
    channel_reads = [s for s in statements if "FROM channels" in s]
    assert len(channel_reads) == 1
    assert "JOIN" not in channel_reads[0].upper()  # no integration/domain/number joined in


@pytest.mark.parametrize("name", WITH_PATCH)
def test_patch_with_if_match(api, setup, name):
    """PATCH with the current tag succeeds and answers the new tag; with the old one, 412 in
    the envelope, and nothing changes."""
    path = _path(name, setup)
    tag = api.get(path).headers["ETag"]
    body = RESOURCES[name].patch
    ok = api.patch(path, json=body, headers={"If-Match": tag})
    assert ok.status_code == 200, ok.get_json()
    new_tag = ok.headers["ETag"]
    _assert_tag(new_tag)
    assert new_tag != tag
    fresh_session()
    assert api.get(path).headers["ETag"] == new_tag  # what PATCH said is what GET says
    stale = api.patch(path, json={**body}, headers={"If-Match": tag})
    assert stale.status_code == 412
    assert stale.get_json()["error"]["code"] == "precondition_failed"
    fresh_session()
    assert api.get(path).headers["ETag"] == new_tag


@pytest.mark.parametrize("name", WITH_PATCH)
@pytest.mark.parametrize(
    ("send", "status", "code"),
    [
        ({}, 415, "unsupported_media_type"),  # no body, no JSON media type
        ({"data": "not json", "content_type": "application/json"}, 400, "bad_request"),
        ({"data": "[1]", "content_type": "application/json"}, 400, "bad_request"),
        ({"json": {"status": 1, "unknown_field": True}}, 422, "validation_error"),
    ],
)
def test_a_patch_refused_without_if_match_answers_that_not_412(
    api, setup, name, send, status, code
):
    """RFC 9110 §13.2.1: a stale (or empty) If-Match on a PATCH that would fail without it (no
    JSON, not an object, a body the rules refuse) answers that failure, not 412; nothing
    changes."""
    path = _path(name, setup)
    tag = api.get(path).headers["ETag"]
    for if_match in ('"0123456789abcdef0123456789abcdef"', ""):
        response = api.patch(path, headers={"If-Match": if_match}, **send)
        assert response.status_code == status, response.get_json()
        assert response.get_json()["error"]["code"] == code
    fresh_session()
    assert api.get(path).headers["ETag"] == tag


@pytest.mark.parametrize("name", RESOURCES)
def test_delete_with_if_match(api, setup, name):
    """DELETE with a stale tag is 412 and deletes nothing; with the current one, 204."""
    path = _path(name, setup)
    tag = api.get(path).headers["ETag"]
    stale = api.delete(path, headers={"If-Match": '"0123456789abcdef0123456789abcdef"'})
    assert stale.status_code == 412
    assert stale.get_json()["error"]["code"] == "precondition_failed"
    assert api.get(path).status_code == 200
    assert api.delete(path, headers={"If-Match": tag}).status_code == 204
    assert api.get(path).status_code == 404


def test_if_match_strong_comparison(api, setup):
    """If-Match compares strongly: a weak tag never matches; * and a list do."""
    path = _path("channel", setup)
    tag = api.get(path).headers["ETag"]
    weak = api.patch(path, json={"name": "Weak"}, headers={"If-Match": f"W/{tag}"})
    assert weak.status_code == 412
    listed = api.patch(path, json={"name": "Listed"}, headers={"If-Match": f'"x", {tag}'})
    assert listed.status_code == 200
    star = api.patch(path, json={"name": "Star"}, headers={"If-Match": "*"})
    assert star.status_code == 200


def test_without_if_match_nothing_changes(api, setup):
    """No If-Match: a PATCH over someone else's change goes through, as before."""
    path = _path("channel", setup)
    api.patch(path, json={"name": "First"})
    response = api.patch(path, json={"name": "Second"})
    assert response.status_code == 200
    assert response.get_json()["name"] == "Second"


def test_create_carries_the_etag(api, setup):
    """POST 201 carries the ETag a GET then gives."""
    created = api.post("/api/channels", json=setup.email_payload(is_default=False))
    assert created.status_code == 201
    fresh_session()
    assert api.get(created.headers["Location"]).headers["ETag"] == created.headers["ETag"]


@pytest.mark.parametrize("name", WITH_PATCH)
def test_etag_changes_after_each_change_within_one_second(api, setup, name, monkeypatch):
    """Every change changes the tag, even when the clock does not move at all."""
    from datetime import UTC, datetime

    frozen = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    for module in ("core.services.channels", "core.services.integrations"):
        monkeypatch.setattr(f"{module}.utcnow", lambda: frozen, raising=False)
    path = _path(name, setup)
    seen = {api.get(path).headers["ETag"]}
    field, value = next(iter(RESOURCES[name].patch.items()))
    for n in range(3):
        response = api.patch(path, json={field: f"{value} {n}"})
        assert response.status_code == 200
        seen.add(response.headers["ETag"])
        fresh_session()
        assert api.get(path).headers["ETag"] == response.headers["ETag"]
    assert len(seen) == 4


def test_status_cascade_changes_the_channel_tag(api, setup):
    """A change made without touching the channel's API (its integration disabled) changes the
    channel's tag too: the tag follows the stored row, not who wrote it."""
    channel_id = _channel(setup)
    path = f"/api/channels/{channel_id}"
    tag = api.get(path).headers["ETag"]
    factories.set_integration_status(setup.tenant, setup.email_integration, "disabled")
    fresh_session()
    assert api.get(path, headers={"If-None-Match": tag}).status_code == 200
    assert api.get(path).get_json()["status"] == "disabled"


def test_phone_number_tag_follows_its_channel(api, setup):
    """A number's representation names its SMS channel: creating one changes the number's tag."""
    number_id = _number(setup)
    path = f"/api/phone_numbers/{number_id}"
    tag = api.get(path).headers["ETag"]
    factories.make_channel(setup, "sms", is_default=False)  # setup.number: another number
    fresh_session()
    assert api.get(path).headers["ETag"] == tag
    number = db.session.get(PhoneNumber, number_id)
    payload = setup.sms_payload(
        send_from_phone_number=number.phone_number, phone_number_id=number_id, is_default=False
    )
    assert api.post("/api/channels", json=payload).status_code == 201
    fresh_session()
    response = api.get(path, headers={"If-None-Match": tag})
    assert response.status_code == 200
    assert response.get_json()["channel_id"] is not None
    assert response.headers["ETag"] != tag


@pytest.mark.parametrize("name", RESOURCES)
@pytest.mark.parametrize(
    "headers",
    [{}, {"If-None-Match": "*"}, {"If-Match": "*"}],
    ids=["plain", "if-none-match-star", "if-match-star"],
)
def test_another_tenants_id_stays_404(api, other_api, setup, other_setup, name, headers):
    """Another tenant's id is 404 whatever the conditional headers say (even *)."""
    foreign = _path(name, other_setup)
    tag = other_api.get(foreign).headers["ETag"]
    for sent in (headers, {"If-None-Match": tag}, {"If-Match": tag}):
        assert api.get(foreign, headers=sent).status_code == 404
        assert api.delete(foreign, headers=sent).status_code == 404
        if RESOURCES[name].patch:
            response = api.patch(foreign, json=RESOURCES[name].patch, headers=sent)
            assert response.status_code == 404
    assert other_api.get(foreign).headers["ETag"] == tag


def test_unknown_id_is_404_with_conditional_headers(api, setup):
    """An unknown or malformed id is 404 with If-None-Match and If-Match alike."""
    for path in ("/api/channels/123e4567-e89b-42d3-a456-426614174999", "/api/channels/x"):
        assert api.get(path, headers={"If-None-Match": "*"}).status_code == 404
        assert api.patch(path, json={"name": "x"}, headers={"If-Match": "*"}).status_code == 404


def test_two_editors_race(app, api, setup):
    """Both read, both PATCH with If-Match at once: one 200, one 412, and the survivor's
    change is the one stored (threads on the served app: separate connections)."""
    path = _path("channel", setup)
    tag = api.get(path).headers["ETag"]
    barrier = threading.Barrier(2)
    results: dict[str, int] = {}
    db.session.commit()  # the test's own transaction must hold nothing the threads need

    def edit(name: str) -> None:
        client = app.test_client()
        barrier.wait(timeout=30)
        response = client.patch(
            path,
            json={"name": name},
            headers={"Authorization": f"Bearer {api.key}", "If-Match": tag},
        )
        results[name] = response.status_code

    threads = [threading.Thread(target=edit, args=(n,)) for n in ("Editor A", "Editor B")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results.values()) == [200, 412], results
    winner = next(name for name, status in results.items() if status == 200)
    fresh_session()
    assert api.get(path).get_json()["name"] == winner


def test_require_version_holds_the_row(app, setup):
    """The check and the write are one transaction: the check reads the row FOR UPDATE
    (PostgreSQL; SQLite's write transaction is BEGIN IMMEDIATE)."""
    channel_id = _channel(setup)
    with counted_statements() as statements:
        tag = conditional.current_version(Channel, setup.tenant.id, channel_id, lock=True)
    db.session.rollback()
    _assert_tag(tag)
    if db.engine.dialect.name == "postgresql":
        assert "FOR UPDATE" in statements[-1]


def test_every_get_of_one_resource_is_conditional(app):
    """Every GET /api/<collection>/{id} route goes through core.conditional."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api.") and "GET" in rule.methods and rule.rule.endswith(">"):
            found.append(rule.rule)
            view = app.view_functions[rule.endpoint]
            assert getattr(view, "conditional", False), rule.rule
    assert len(found) == len(RESOURCES)


def test_document_declares_the_conditional_headers_and_statuses(app):
    """The OpenAPI document: ETag on the GET's 200, the PATCH's 200 and the POST's 201;
    If-None-Match and 304 on GET; If-Match and 412 on PATCH and DELETE."""
    from core.openapi import build_openapi

    document = build_openapi(app)
    etag = {"$ref": "#/components/headers/ETag"}
    assert document["components"]["headers"]["ETag"]["schema"]["type"] == "string"
    assert "Error412" in document["components"]["responses"]
    for resource in RESOURCES.values():
        collection = document["paths"][resource.collection]
        one = next(
            item
            for path, item in document["paths"].items()
            if path.startswith(resource.collection + "/{") and path.endswith("}")
        )
        params = {p.get("$ref", "").rsplit("/", 1)[-1] for p in one["get"]["parameters"]}
        assert "IfNoneMatch" in params
        assert one["get"]["responses"]["304"] == {"$ref": "#/components/responses/NotModified"}
        assert one["get"]["responses"]["200"]["headers"]["ETag"] == etag
        assert collection["post"]["responses"]["201"]["headers"]["ETag"] == etag
        for method in ("patch", "delete"):
            if method not in one:
                continue
            params = {p.get("$ref", "").rsplit("/", 1)[-1] for p in one[method]["parameters"]}
            assert "IfMatch" in params
            assert one[method]["responses"]["412"] == {"$ref": "#/components/responses/Error412"}
        if "patch" in one:
            assert one["patch"]["responses"]["200"]["headers"]["ETag"] == etag
