"""Resource shapes, declared once as pydantic v2 models (issue 12).

A resource module under ``core.schemas`` declares its request and response models and marks each
with ``@declared`` (responses) or ``@declared(mode="validation")`` (request bodies). The same
class then:

- parses a request body (``parse_body(Model, data)``: every error at once, keyed by field path,
  raised as the API's ``ValidationFailed`` so the envelope and status stay the same),
- serializes a response (``Model.model_validate(obj).model_dump(mode="json")`` or built directly),
- is a component of ``/api/openapi.json`` under its class name (``component_schemas()``, merged
  by ``core.openapi.build_openapi``). Names are the class names, never prose titles: the JSON
  Schema generator below writes no ``title`` at all, so client generators name models after
  the component.

Cross-row rules (tenant ownership, names taken, default handover, status derivation) stay in
``core.rules`` and the services; a model holds only what one value or one object can say.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.json_schema import GenerateJsonSchema

from core.errors import FieldErrors

REF_TEMPLATE = "#/components/schemas/{model}"
Mode = Literal["validation", "serialization"]
M = TypeVar("M", bound=BaseModel)

_DECLARED: dict[str, tuple[type[BaseModel], Mode]] = {}


class Schema(BaseModel):
    """The base of every declared shape: unknown fields are refused, strings are not coerced
    from numbers (``strict`` per field where the rules want it)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _NoTitles(GenerateJsonSchema):
    """JSON Schema without ``title``s: generators name models after components, not prose."""

    def field_title_should_be_set(self, schema) -> bool:  # noqa: ARG002 - pydantic's signature
        return False

    def generate(self, schema, mode="validation"):
        result = super().generate(schema, mode=mode)
        _strip_titles(result)
        return result


def _strip_titles(node: Any) -> None:
    if isinstance(node, dict):
        node.pop("title", None)
        for key, value in node.items():
            if key in ("properties", "$defs", "patternProperties"):
                for sub in value.values():
                    _strip_titles(sub)
            else:
                _strip_titles(value)
    elif isinstance(node, list):
        for item in node:
            _strip_titles(item)


def declared(model: type[M] | None = None, *, mode: Mode = "serialization"):
    """Registers ``model`` as a component of the OpenAPI document (``@declared`` or
    ``@declared(mode="validation")`` for a request body)."""

    def register(cls: type[M]) -> type[M]:
        name = cls.__name__
        if name in _DECLARED and _DECLARED[name][0] is not cls:
            raise LookupError(f"two schemas are declared as {name!r}")
        _DECLARED[name] = (cls, mode)
        return cls

    return register(model) if model is not None else register


def json_schema(model: type[BaseModel], mode: Mode = "serialization") -> tuple[dict, dict]:
    """(the model's schema, the definitions it refers to), refs pointing at components."""
    schema = model.model_json_schema(
        ref_template=REF_TEMPLATE, schema_generator=_NoTitles, mode=mode
    )
    definitions = schema.pop("$defs", {})
    return schema, definitions


def component_schemas() -> dict[str, dict]:
    """Every declared model (and the models it refers to) as OpenAPI components."""
    components: dict[str, dict] = {}
    for name, (model, mode) in sorted(_DECLARED.items()):
        schema, definitions = json_schema(model, mode)
        components[name] = schema
        for def_name, definition in definitions.items():
            components.setdefault(def_name, definition)
    return components


def field_path(location: tuple[Any, ...]) -> str:
    """pydantic's error location as the API's field key (``credentials.port``, ``items.3.name``)."""
    return ".".join(str(part) for part in location) or "body"


def parse_body(model: type[M], data: Any, message: str = "The request is not valid.") -> M:
    """``data`` parsed by ``model``; every error at once as the API's 422 ``validation_error``.

    A field's message is pydantic's unless the field's validator raised a ``ValueError`` with the
    rules' own sentence (the declared types in ``core.schemas`` do that), so callers see the
    messages of the rules, as before."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = FieldErrors()
        for error in exc.errors(include_url=False, include_input=False):
            text = error["msg"]
            if error["type"] == "value_error":
                text = str(error.get("ctx", {}).get("error", text))
            elif error["type"] == "extra_forbidden":
                text = "Unknown field."
            elif error["type"] == "missing":
                text = "This field is required."
            errors.add(field_path(error["loc"]), text)
        errors.raise_if_any(message)
        raise  # unreachable: a ValidationError always has errors
