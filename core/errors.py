"""Errors raised by the services; blueprints map them to the JSON envelope or to form errors."""

from __future__ import annotations

# The messages of the field errors every resource shares (the rules and core.schemas both use
# them; they live here, where neither package is imported).
REQUIRED = "This field is required."
READ_ONLY = "This field is read-only."
UNKNOWN = "Unknown field."


class ServiceError(Exception):
    """Base class: ``status`` and ``code`` are what the JSON API answers with."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, fields: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class ValidationFailed(ServiceError):
    """One or more rules failed; ``fields`` lists every failing field at once."""

    status = 422
    code = "validation_error"


class NotFound(ServiceError):
    """Unknown id, malformed id, or another tenant's id: indistinguishable on purpose."""

    status = 404
    code = "not_found"


class Conflict(ServiceError):
    """The request is valid but conflicts with the current state (e.g. a resource in use)."""

    status = 409
    code = "conflict"


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"


class FieldErrors:
    """Collects messages per field, so that every failing field is reported at once."""

    def __init__(self) -> None:
        self._errors: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        messages = self._errors.setdefault(field, [])
        if message not in messages:
            messages.append(message)

    def __contains__(self, field: str) -> bool:
        return field in self._errors

    def __bool__(self) -> bool:
        return bool(self._errors)

    def as_dict(self) -> dict[str, list[str]]:
        return {field: list(messages) for field, messages in self._errors.items()}

    def raise_if_any(self, message: str) -> None:
        if self._errors:
            raise ValidationFailed(message, self.as_dict())
