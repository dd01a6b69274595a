"""Edit forms that know which version they were rendered from (``core.conditional``).

An edit form carries two hidden fields: ``version`` (the resource's ETag when the form was
rendered) and ``seen`` (what the form showed). Saving checks ``version`` inside the write's
transaction with ``core.conditional.require_version``, the same check as the API's If-Match.
When someone else changed the resource meanwhile nothing is saved, and the form comes back
with what the user typed, a notice naming each field that changed and its new value, and the
new version: saving again applies the user's values on top of the change, knowingly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from flask_wtf import FlaskForm
from wtforms import HiddenField

from core.conditional import changed_since, snapshot


class VersionedForm(FlaskForm):
    """An edit form with its version (``version``) and what it showed (``seen``)."""

    version = HiddenField()
    seen = HiddenField()

    def stamp(self, version: str, shown: dict) -> None:
        """Record the version and the values the form is rendered from."""
        self.version.data = version
        self.seen.data = snapshot(shown)


@dataclass(frozen=True)
class StaleEdit:
    """What changed underneath an edit form: ``changes`` as (label, new value) pairs."""

    noun: str
    changes: list[tuple[str, str]] = field(default_factory=list)


def _shown(value) -> str:
    if value is None or value == "" or value == {}:
        return "(none)"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, dict):
        return ", ".join(f"{key} = {item}" for key, item in value.items())
    return str(value)


def stale_edit(
    form: VersionedForm,
    noun: str,
    version: str,
    current: dict,
    labels: dict[str, str],
    display: Callable[[str, object], str | None] = lambda name, value: None,
) -> StaleEdit:
    """The notice for a form whose ``version`` is no longer current; re-stamps the form with
    ``version`` and ``current`` (the stored values now) so that saving again goes through. The
    service's own message is dropped from the form: the notice says it better."""
    names = changed_since(form.seen.data, current)
    changes = [
        (labels.get(name, name.replace("_", " ").capitalize()), display(name, current[name]))
        for name in names
    ]
    changes = [
        (label, shown if shown is not None else _shown(current[name]))
        for (label, shown), name in zip(changes, names, strict=True)
    ]
    form.stamp(version, current)
    form.form_errors[:] = []
    return StaleEdit(noun, changes)
