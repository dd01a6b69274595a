"""JSON text for the database's JSON columns and the API's response bodies, by orjson.

Both are hot on the write paths: a bulk create of 1,000 channels writes 3,000 JSON values (each
channel's metadata, audit changes and event payload) and answers 1,000 channels; a list answers
50. ``json.dumps`` spent ~5 µs on each audit or event value, orjson ~0.5 (bench/FINDINGS.md
§17). Its text is the same JSON: compact (as Flask's production responses already were), keys
in the order given, non-ASCII characters as UTF-8 rather than ``\\u`` escapes.

What orjson refuses and ``json`` accepts (an integer beyond 64 bits in metadata, a key that is
not a string) is written by ``json.dumps`` instead, as before: no value that was stored or
answered before fails now.

JSON read from the database (``loads``, the engine's ``json_deserializer``) stays the standard
library's decoder: ``orjson.loads`` reads an integer beyond 64 bits as a float, silently.
"""

from __future__ import annotations

import json
import json.scanner

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


# First bytes of JSON texts that ``json.detect_encoding`` reads as UTF-8 when the second byte is
# not NUL: none starts a byte order mark (0xEF, 0xFE, 0xFF, 0x00).
_UTF8_STARTS = frozenset(b'{["-0123456789tfn')
_DECODER = json.JSONDecoder()  # what ``json.loads`` uses without keyword arguments
_decode = _DECODER.decode
# The decoder's own scanner (C): one value from an index, as ``decode`` reads it after skipping
# whitespace; ``decode`` then refuses anything but whitespace after it.
_scan = json.scanner.make_scanner(_DECODER)


def loads(data: bytes | str):
    """``json.loads(data)``, the same value and the same errors, for the JSON columns read
    (the engine's ``json_deserializer``: psycopg's JSON loaders on PostgreSQL, SQLAlchemy's JSON
    type on SQLite).

    PostgreSQL hands psycopg each value as UTF-8 bytes (a list page: 50), and ``json.loads``
    first guesses their encoding (``json.detect_encoding``: five ``startswith`` and two
    ``len`` per value). Bytes starting with one of JSON's ASCII first characters, with no NUL
    as their second byte, are what that guess calls UTF-8, so they are decoded as
    ``json.loads`` decodes them (UTF-8, ``surrogatepass``) and parsed by the same decoder;
    so is a ``str`` not starting with a byte order mark (which ``json.loads``
    refuses). Anything else (a mark, UTF-16/32, leading whitespace, empty bytes, another type)
    goes to ``json.loads`` itself. ``tests/test_json_text.py`` compares the two on big
    integers, non-ASCII text, marks, UTF-16/32 and invalid input."""
    kind = type(data)
    if kind is bytes and data and data[0] in _UTF8_STARTS and data[1:2] != b"\x00":
        text = data.decode("utf-8", "surrogatepass")
    elif kind is str and not data.startswith("\ufeff"):
        text = data
    else:
        return json.loads(data)
    # ``decode(text)``: the scanner reads the one value when it fills the text (PostgreSQL's
    # JSON output has no whitespace around it); any other text, valid or not, goes to
    # ``decode`` itself, which skips the whitespace around the value or raises its error.
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        return _decode(text)
    return value if end == len(text) else _decode(text)


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
