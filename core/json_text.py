"""JSON text for the database's JSON columns and the API's response bodies, by orjson.

Both are hot on the write paths: a bulk create of 1,000 channels writes 3,000 JSON values (each
channel's metadata, audit changes and event payload) and answers 1,000 channels; a list answers
50. ``json.dumps`` spent ~5 µs on each audit or event value, orjson ~0.5 (bench/FINDINGS.md
§17). Its text is the same JSON: compact (as Flask's production responses already were), keys
in the order given, non-ASCII characters as UTF-8 rather than ``\\u`` escapes.

What orjson refuses and ``json`` accepts (an integer beyond 64 bits in metadata, a key that is
not a string) is written by ``json.dumps`` instead, as before: no value that was stored or
answered before fails now.
"""

from __future__ import annotations

import json

import orjson
from flask.json.provider import DefaultJSONProvider, _default

# Dates and dataclasses go to Flask's own ``default`` (an HTTP date; ``asdict``), as before.
_RESPONSE_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def dumps(value) -> str:
    """``value`` as JSON text (the engine's ``json_serializer``)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value)


class JSONProvider(DefaultJSONProvider):
    """Flask's provider, with response bodies written by orjson (``dumps`` and ``loads`` keep
    Flask's: templates' ``tojson`` and anything else that asks the app for JSON text)."""

    sort_keys = False  # the documented field order of API objects

    def response(self, *args, **kwargs):
        if (self.compact is None and self._app.debug) or self.compact is False:
            return super().response(*args, **kwargs)  # the indented form, for people
        value = self._prepare_response_obj(args, kwargs)
        try:
            body = orjson.dumps(value, default=_default, option=_RESPONSE_OPTIONS)
        except TypeError:
            return super().response(*args, **kwargs)
        return self._app.response_class(body + b"\n", mimetype=self.mimetype)
