"""Resource shapes, declared once as pydantic v2 models (issue 12).

A resource module under ``core.schemas`` declares its request and response models and marks each
with ``@declared`` (responses) or ``@declared(mode="validation")`` (request bodies). The same
class then:

- parses a request body (``parse_body(Model, data)``: every error at once, keyed by field path,
  raised as the API's ``ValidationFailed`` so the envelope and status stay the same),
- serializes a response (``render_values(Model, values)``; a list page with
  ``render_page(XList, items, next_cursor)``, the envelope made by ``list_of``): the values,
  read from our own rows, are put in the model's declaration order and its fields' serializers
  (timestamps) applied, without validating them again (``render(instance)`` dumps a model
  already built). The test suite sets ``CHECK_RENDERED``, which validates every rendered
  object by its model as well, and the conformance tests check the shapes against the document,
- is a component of ``/api/openapi.json`` under its class name (``component_schemas()``, merged
  by ``core.openapi.build_openapi``). Names are the class names, never prose titles: the JSON
  Schema generator below writes no ``title`` at all, so client generators name models after
  the component.

Cross-row rules (tenant ownership, names taken, default handover, status derivation) stay in
``core.rules`` and the services; a model holds only what one value or one object can say.

Request fields are typed with ``rule(cleaner, schema)`` (see ``core.schemas.values``), or with
``described(schema)`` for a value the rules read in context (a number whose form depends on
``country``, credentials judged against the stored ones): the
validator is the rules' own cleaner (``core.rules.values``), so a message is the rules' sentence,
and the JSON Schema is declared on the type, so the document keeps the constraints (patterns,
lengths, enums) the cleaner enforces. The rules read a body through ``parse_fields``, which
collects the model's value errors into the rules' ``FieldErrors``: value errors and the
cross-row errors found after them leave in one 422, as before. Unknown fields are refused with
"Unknown field.", the model's ``read_only`` ones with "This field is read-only.".

A resource module imports ``core.rules.values`` (its cleaners); the rules import the resource
modules inside their functions, so that either package may be imported first.

One module per resource: ``channels``, ``integrations`` (one model per provider, from the
provider registry), ``email_domains``, ``phone_numbers``, ``audit_events``, ``errors``; the
shared value types are in ``values``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import cache
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    create_model,
)
from pydantic.json_schema import GenerateJsonSchema

from core.errors import READ_ONLY, REQUIRED, UNKNOWN, FieldErrors

REF_TEMPLATE = "#/components/schemas/{model}"
Mode = Literal["validation", "serialization"]
M = TypeVar("M", bound=BaseModel)

_DECLARED: dict[str, tuple[type[BaseModel], Mode]] = {}


class Schema(BaseModel):
    """The base of every declared shape: unknown fields are refused, strings are not coerced
    from numbers (``strict`` per field where the rules want it).

    A request model may name, in ``read_only``, the fields a caller sees in responses but may not
    send: they are refused with "This field is read-only." rather than "Unknown field."."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    read_only: ClassVar[tuple[str, ...]] = ()


class _NoTitles(GenerateJsonSchema):
    """JSON Schema without ``title``s: generators name models after components, not prose."""

    def field_title_should_be_set(self, schema) -> bool:  # noqa: ARG002 - pydantic's signature
        return False

    def default_schema(self, schema):
        # A None default means "may be omitted", not a value to document (or to send).
        if schema.get("default", ...) is None:
            return self.generate_inner(schema["schema"])
        return super().default_schema(schema)

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


class RuleError(ValueError):
    """A rule cleaner's messages, raised from a field's validator: ``fields`` maps the keys the
    cleaner wrote (``field`` itself, or a nested key such as ``credentials.port``) to messages."""

    def __init__(self, field: str, fields: dict[str, list[str]]):
        super().__init__(next(iter(fields.values()))[0])
        self.field = field
        self.fields = fields


Cleaner = Callable[[Any, FieldErrors, str], Any]


def rule(cleaner: Cleaner, schema: dict | Any) -> Any:
    """A field type whose validator is a rules cleaner (``cleaner(value, errors, field_name)``,
    as in ``core.rules.values``) and whose JSON Schema is ``schema`` (a JSON Schema, or a type
    whose schema it is, e.g. a declared model or ``Metadata | None``): the messages stay the
    rules' own, the document states the same constraints."""

    def validate(value: Any, info: ValidationInfo) -> Any:
        errors = FieldErrors()
        name = info.field_name or "value"
        cleaned = cleaner(value, errors, name)
        if errors:
            raise RuleError(name, errors.as_dict())
        if info.context is not None:  # parse_fields keeps what passed, in case others fail
            info.context[name] = cleaned
        return cleaned

    validate.cleaner = cleaner  # what the field's messages come from (tests compare them)
    if isinstance(schema, dict):
        return Annotated[Any, PlainValidator(validate), WithJsonSchema(schema)]
    return Annotated[Any, PlainValidator(validate, json_schema_input_type=schema)]


def required_in_document(*names: str) -> ConfigDict:
    """A model config listing ``names`` as required in the document while the model lets them
    be omitted: a value judged later (by the rules or the service, with their own message and
    in their own order), which callers must still send."""

    def add(schema: dict) -> None:
        schema["required"] = [*schema.get("required", ()), *names]

    return ConfigDict(json_schema_extra=add)


def described(schema: dict) -> Any:
    """A field type taken as sent (the rules read it), documented as ``schema``."""
    return Annotated[Any, WithJsonSchema(schema)]


def _add_error(model: type[BaseModel], error: dict, errors: FieldErrors) -> None:
    """One pydantic error as the rules' message(s) on the API's field key."""
    location = error["loc"]
    context = error.get("ctx") or {}
    cause = context.get("error")
    if isinstance(cause, RuleError):
        parent = location[:-1]
        for key, messages in cause.fields.items():
            path = field_path(location) if key == cause.field else field_path((*parent, key))
            for message in messages:
                errors.add(path, message)
        return
    if error["type"] == "extra_forbidden":
        text = READ_ONLY if location[-1] in getattr(model, "read_only", ()) else UNKNOWN
    elif error["type"] == "missing":
        text = REQUIRED
    elif error["type"] == "value_error":
        text = str(cause or error["msg"])
    else:
        text = error["msg"]
    errors.add(field_path(location), text)


@cache
def _field_adapter(model: type[BaseModel], name: str) -> TypeAdapter:
    """One field of ``model`` alone (built once per field, on first use)."""
    field = model.model_fields[name]
    if not field.metadata:
        return TypeAdapter(field.annotation)
    return TypeAdapter(Annotated[(field.annotation, *field.metadata)])


def parse_fields(
    model: type[BaseModel], data: dict, errors: FieldErrors, skip: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``data`` (less the keys in ``skip``, which the caller judges) read by ``model``'s fields.

    Returns the cleaned value of every field that passed (and the default of each omitted
    optional one); every failure (unknown, read-only, missing, a value a cleaner refused) is
    added to ``errors`` instead of raised, so that the rules go on to the cross-row checks of
    the fields that passed and report everything at once."""
    payload = {key: value for key, value in data.items() if key not in skip} if skip else data
    passed: dict[str, Any] = {}  # what each rule-typed field's cleaner returned
    try:
        parsed = model.model_validate(payload, context=passed)
    except ValidationError as exc:
        failed = set()
        for error in exc.errors(include_url=False, include_input=False):
            field = error["loc"][0] if error["loc"] else None
            if field in skip:  # required by the model, judged (and reported) by the caller
                continue
            failed.add(field)
            _add_error(model, error, errors)
    else:
        return {name: getattr(parsed, name) for name in model.model_fields}
    values: dict[str, Any] = {}
    for name, required, default in _fields_of(model):
        if name in failed:
            continue
        if name in passed:
            values[name] = passed[name]
        elif name in payload:  # a field without a rule cleaner: read it alone
            values[name] = _field_adapter(model, name).validator.validate_python(payload[name])
        elif not required:
            values[name] = copy.deepcopy(default)
    return values


@cache
def _fields_of(model: type[BaseModel]) -> tuple[tuple[str, bool, Any], ...]:
    """(name, required, default) of each field of ``model``, read once."""
    return tuple(
        (name, field.is_required(), None if field.is_required() else field.get_default())
        for name, field in model.model_fields.items()
    )


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
            _add_error(model, error, errors)
        errors.raise_if_any(message)
        raise  # unreachable: a ValidationError always has errors


def list_of(item: Any, name: str, plural: str = "objects") -> type[Schema]:
    """The list envelope of ``item`` (``{"data": [...], "next_cursor": ...}``), declared as
    ``name`` (e.g. ``ChannelList``)."""
    model = create_model(
        name,
        __base__=Schema,
        __doc__=f"One page of {plural}, newest first.",
        data=(list[item], ...),
        next_cursor=(
            Annotated[str | None, WithJsonSchema({"type": ["string", "null"]})],
            Field(description="Pass as `cursor` for the next page; null on the last page."),
        ),
    )
    return declared(model)


def render(instance: BaseModel) -> dict:
    """A response model as the API's JSON object (its fields in declaration order; an optional
    field that was not set, such as a channel's ``updated_at``, is absent rather than null)."""
    return instance.model_dump(mode="json", exclude_unset=True)


# Set by the test suite: render_values also validates what it renders by the declared model, and
# fails the test when it differs from the model's own dump.
CHECK_RENDERED = False


@cache
def _render_plan(model: type[BaseModel]) -> tuple[tuple[str, Callable[[Any], Any] | None], ...]:
    """(name, serializer or None) of each field of ``model``, in declaration order, read once."""
    plan = []
    for name, field in model.model_fields.items():
        serializers = [m.func for m in field.metadata if isinstance(m, PlainSerializer)]
        plan.append((name, serializers[-1] if serializers else None))
    return tuple(plan)


def render_values(model: type[BaseModel], values: dict[str, Any]) -> dict:
    """``values`` as ``model`` renders them: what ``render(model.model_validate(values))``
    returns (fields in declaration order, a field absent from ``values`` absent from the
    object, each field's serializer applied), without validating values read from our own rows
    again on every response. Values must already be JSON types but for the serialized fields
    (timestamps); ``CHECK_RENDERED`` (the test suite) proves it for every object rendered."""
    rendered = {}
    for name, serializer in _render_plan(model):
        if name in values:
            value = values[name]
            rendered[name] = value if serializer is None else serializer(value)
    if CHECK_RENDERED:
        expected = render(model.model_validate(values))
        assert rendered == expected and list(rendered) == list(expected), (rendered, expected)
    return rendered


def render_page(model: type[Schema], items: list[dict], next_cursor: str | None) -> dict:
    """One page of a list (``model`` from ``list_of``): ``items`` are already rendered, each by
    its own model (``render``), so the envelope only puts them in order."""
    assert set(model.model_fields) == {"data", "next_cursor"}, model
    return {"data": items, "next_cursor": next_cursor}
