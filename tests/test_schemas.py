"""core.schemas: one pydantic declaration gives the parser, the serializer and the component."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import AfterValidator, Field

from core import schemas
from core.errors import ValidationFailed
from core.schemas import Schema, declared, json_schema, parse_body


def _even(value: int) -> int:
    if value % 2:
        raise ValueError("Must be an even number.")
    return value


class Sample(Schema):
    name: Annotated[str, Field(min_length=1, max_length=5, description="A short name")]
    count: Annotated[int, AfterValidator(_even)] = 0


def test_parse_body_reports_every_field_at_once_with_the_rules_messages():
    """Unknown fields, missing fields and a validator's own sentence, all in one 422."""
    with pytest.raises(ValidationFailed) as caught:
        parse_body(Sample, {"count": 3, "colour": "red"}, "The sample could not be created.")
    assert caught.value.fields == {
        "name": ["This field is required."],
        "count": ["Must be an even number."],
        "colour": ["Unknown field."],
    }
    assert str(caught.value) == "The sample could not be created."
    assert parse_body(Sample, {"name": "ab", "count": 4}) == Sample(name="ab", count=4)


def test_generated_schema_has_no_titles_and_refs_point_at_components():
    """Component names come from class names; no prose title reaches a client generator."""

    class Outer(Schema):
        inner: Sample

    schema, definitions = json_schema(Outer)
    assert schema["properties"]["inner"] == {"$ref": "#/components/schemas/Sample"}
    assert "title" not in str(schema) + str(definitions)
    assert definitions["Sample"]["properties"]["name"]["description"] == "A short name"


def test_two_models_may_not_claim_one_component_name(monkeypatch):
    """A second class declared under a taken name is a programming error."""
    monkeypatch.setattr(schemas, "_DECLARED", {})
    declared(Sample)
    declared(Sample)  # the same class again is fine

    class Sample2(Schema):
        pass

    Sample2.__name__ = "Sample"
    with pytest.raises(LookupError):
        declared(Sample2)
