"""Metadata key/value rows of the channel form: labelled inputs, and a fixed number of blank rows
however often a form with blank rows is re-rendered."""

from __future__ import annotations

from blueprints.console.forms import METADATA_BLANK_ROWS
from tests.console.helpers import csrf_token, soup


def metadata_rows(page) -> list[tuple[str, str]]:
    """The (key, value) of every rendered metadata row of the form (the template row excluded)."""
    rows = page.find("form", id="channel-form").find(attrs={"data-metadata-rows": True})
    keys = [i.get("value", "") for i in rows.find_all("input", attrs={"name": "metadata-key"})]
    values = [i.get("value", "") for i in rows.find_all("input", attrs={"name": "metadata-value"})]
    return list(zip(keys, values, strict=True))


def resubmit(client, page) -> object:
    """Post the form as rendered in ``page`` (every row, blank ones included) with a blank name."""
    rows = metadata_rows(page)
    data = {
        "csrf_token": csrf_token(client, "/channels/new"),
        "name": "",
        "channel_type": "email",
        "metadata-key": [key for key, _ in rows],
        "metadata-value": [value for _, value in rows],
    }
    return client.post("/channels/new", data=data)


def test_new_form_offers_the_blank_rows(console, setup):
    """GET /channels/new renders exactly METADATA_BLANK_ROWS blank metadata rows."""
    page = soup(console.get("/channels/new"))
    assert metadata_rows(page) == [("", "")] * METADATA_BLANK_ROWS


def test_blank_rows_do_not_pile_up_over_failed_submits(console, setup):
    """Failed submits re-render the typed rows plus the same number of blank rows, every time."""
    page = soup(console.get("/channels/new"))
    for _ in range(3):
        response = resubmit(console, page)
        assert response.status_code == 422
        page = soup(response)
        assert metadata_rows(page) == [("", "")] * METADATA_BLANK_ROWS


def test_typed_rows_are_kept_and_blank_rows_not_added_twice(console, setup):
    """A typed row survives two failed submits, followed by the blank rows only once."""
    data = {
        "csrf_token": csrf_token(console, "/channels/new"),
        "name": "",
        "channel_type": "email",
        "metadata-key": ["", "team", ""],
        "metadata-value": ["", "ops", ""],
    }
    page = soup(console.post("/channels/new", data=data))
    page = soup(resubmit(console, page))
    assert metadata_rows(page) == [("team", "ops")] + [("", "")] * METADATA_BLANK_ROWS


def test_every_metadata_input_has_a_label(console, setup):
    """Each metadata key and value input has its own <label for=...> (the column heads are
    decorative)."""
    page = soup(console.get("/channels/new"))
    form = page.find("form", id="channel-form")
    labels = {
        tag["for"]: tag.get_text(strip=True)
        for tag in form.find_all("label")
        if tag.has_attr("for")
    }
    rows = form.find(attrs={"data-metadata-rows": True})
    inputs = rows.find_all("input", attrs={"name": ["metadata-key", "metadata-value"]})
    assert len(inputs) == 2 * METADATA_BLANK_ROWS
    for number, element in enumerate(inputs):
        text = labels[element["id"]]
        row = number // 2 + 1
        assert text == (f"Metadata key {row}" if number % 2 == 0 else f"Metadata value {row}")
