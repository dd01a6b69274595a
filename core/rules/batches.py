"""The rule of a batch itself (DESIGN §10): a list of 1 to ``BATCH_MAX`` items. Each item is
judged by its resource's own rules (``check_channel``, ``check_phone_number``), then against the
other items of the batch (``core.services.bulk``)."""

from __future__ import annotations

from core.errors import FieldErrors
from core.rules.values import is_missing

BATCH_MAX = 1000


def clean_batch(value: object, errors: FieldErrors, field_name: str) -> list | None:
    """A JSON array of 1 to BATCH_MAX items (each item is judged by its resource's rules)."""
    if is_missing(value):
        errors.add(field_name, "This field is required.")
        return None
    if not isinstance(value, list):
        errors.add(field_name, "Must be a list of objects.")
        return None
    if not value:
        errors.add(field_name, "Send at least one item.")
        return None
    if len(value) > BATCH_MAX:
        errors.add(field_name, f"At most {BATCH_MAX} items per request.")
        return None
    return value
