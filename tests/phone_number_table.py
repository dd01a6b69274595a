"""The phone number rule as a table (DESIGN §3): E.164 syntax, a known country calling code and
a length possible for it; not whether the range is assigned today. Used by the API and console
tests of channels and of phone numbers alike."""

from __future__ import annotations

import pytest

from core.rules import INVALID_NUMBER

E164_FORMAT = "Enter the number in E.164 format, e.g. +14155550123."

# (number in E.164, what it is)
ACCEPTED = [
    ("+15551234567", "the seed's number (555: not assigned in North America)"),
    ("+15005550006", "Twilio's magic test number"),
    ("+12025550123", "a North American number of the 555-01xx fiction range"),
    ("+447911123456", "a UK mobile"),
    ("+4915123456789", "a German mobile"),
]

# (number, refusal class, message) for fields that take E.164
REFUSED_E164 = [
    ("+1555123456a", "letters", E164_FORMAT),
    ("+1 555 123 4567", "spaces", E164_FORMAT),
    ("+99912345678", "unknown calling code", INVALID_NUMBER),
    ("+1555123", "too short for the country (a local-only length)", INVALID_NUMBER),
    ("+4479111234567", "too long for the country", INVALID_NUMBER),
    ("+1234567890123456", "more than 15 digits", E164_FORMAT),
]

# The console's "add a number" form: (typed, country) as people type it nationally.
ACCEPTED_NATIONAL = [
    ("(555) 123-4567", "US", "+15551234567"),
    ("500 555 0006", "US", "+15005550006"),
    ("07911 123456", "GB", "+447911123456"),
    ("0151 23456789", "DE", "+4915123456789"),
    ("+44 7911 123456", "US", "+447911123456"),  # a + number wins over the country
]
NO_COUNTRY_CODE = f"{INVALID_NUMBER} Start with + and the country code, or choose a country."
REFUSED_NATIONAL = [
    ("555-CALL-NOW", "US", "letters", INVALID_NUMBER),
    ("+999 1234 5678", "US", "unknown calling code", NO_COUNTRY_CODE),
    ("555 1234", "US", "too short for the country", INVALID_NUMBER),
    ("07911 1234567", "GB", "too long for the country", INVALID_NUMBER),
    ("+1234567890123456", "US", "more than 15 digits", INVALID_NUMBER),
]


def accepted():
    return pytest.mark.parametrize("number", [n for n, _ in ACCEPTED], ids=[w for _, w in ACCEPTED])


def refused_e164():
    return pytest.mark.parametrize(
        ("number", "message"),
        [(n, m) for n, _, m in REFUSED_E164],
        ids=[w for _, w, _ in REFUSED_E164],
    )
