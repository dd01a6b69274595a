"""Property tests for core.rules: valid values are always accepted (and cleaned predictably),
invalid ones always rejected — on the field they belong to, never on another.

Generated with Hypothesis (derandomized, so the suite is reproducible): channel names,
metadata, E.164 numbers and email addresses, first through the single-value checks, then
through ``check_channel`` with a ready tenant.
"""

from __future__ import annotations

import unicodedata

import phonenumbers
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from core import rules
from core.errors import FieldErrors, ValidationFailed

SETTINGS = settings(max_examples=100, derandomize=True, deadline=None, database=None)
DB_SETTINGS = settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Printable: every category but control characters (Cc) and lone surrogates (Cs).
printable = st.characters(blacklist_categories=("Cc", "Cs"))
control = st.characters(whitelist_categories=("Cc",))
not_a_string = st.one_of(
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _accepts(check, value, *args):
    errors = FieldErrors()
    result = check(value, errors, *args)
    assert not errors, (value, errors.as_dict())
    return result


def _rejects(check, value, field, *args):
    errors = FieldErrors()
    assert check(value, errors, *args) is None
    assert set(errors.as_dict()) == {field}, (value, errors.as_dict())


# --- names ------------------------------------------------------------------------------------

valid_names = st.text(printable, min_size=1, max_size=100).filter(
    lambda s: s.strip() and len(unicodedata.normalize("NFC", s.strip())) <= 100
)


@SETTINGS
@given(valid_names)
def test_valid_names_are_accepted_trimmed_and_nfc(name):
    """1–100 printable characters (after trimming): accepted as their trimmed NFC form."""
    assert _accepts(rules.clean_name, name) == unicodedata.normalize("NFC", name.strip())


@SETTINGS
@given(
    st.one_of(
        st.builds(
            lambda a, c, b: a + c + b,
            valid_names.filter(lambda s: not s[-1].isspace()),
            control,
            st.text(printable, min_size=1, max_size=5).filter(lambda s: not s[0].isspace()),
        ),
        st.text(printable, min_size=101, max_size=150).filter(
            lambda s: len(unicodedata.normalize("NFC", s.strip())) > 100
        ),
        st.text(" \t\n\u00a0\u2003", max_size=5),
        not_a_string,
        st.none(),
    )
)
def test_invalid_names_are_rejected_on_name(value):
    """Control characters inside, over 100 characters, blank, null or not a string: on ``name``."""
    _rejects(rules.clean_name, value, "name")


# --- metadata ---------------------------------------------------------------------------------

metadata_keys = st.text(printable, min_size=1, max_size=40)
metadata_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(printable, max_size=500),
)
valid_metadata = st.dictionaries(metadata_keys, metadata_values, max_size=50)


@SETTINGS
@given(valid_metadata)
def test_valid_metadata_is_accepted_unchanged(metadata):
    """≤50 keys of 1–40 characters, scalar values, strings ≤500: accepted as given."""
    assert _accepts(rules.clean_metadata, metadata) == metadata


@SETTINGS
@given(
    st.one_of(
        st.dictionaries(metadata_keys, metadata_values, min_size=51, max_size=60),
        st.builds(
            lambda m, k: {**m, k: 1}, valid_metadata, st.text(printable, min_size=41, max_size=60)
        ),
        st.builds(lambda m: {**m, "": 1}, valid_metadata),
        st.builds(lambda m, c: {**m, f"k{c}": 1}, valid_metadata, control),
        st.builds(
            lambda m, v: {**m, "nested": v},
            valid_metadata,
            st.one_of(
                st.lists(st.integers(), max_size=2),
                st.dictionaries(metadata_keys, st.integers(), max_size=2),
            ),
        ),
        st.builds(
            lambda m, v: {**m, "long": v},
            valid_metadata,
            st.text(printable, min_size=501, max_size=600),
        ),
        st.builds(lambda m: {**m, "nan": float("nan")}, valid_metadata),
        st.lists(st.integers(), max_size=2),
        st.text(max_size=5),
        st.integers(),
        st.booleans(),
    )
)
def test_invalid_metadata_is_rejected_on_metadata(value):
    """Too many keys, bad keys, nested or over-long values, NaN, not an object: on ``metadata``."""
    _rejects(rules.clean_metadata, value, "metadata")


# --- E.164 ------------------------------------------------------------------------------------

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
TYPES = [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]


@st.composite
def valid_e164(draw):
    """A valid number of a random region, its last digits varied."""
    region = draw(st.sampled_from(REGIONS))
    example = phonenumbers.example_number_for_type(region, draw(st.sampled_from(TYPES)))
    assume(example is not None)
    national = str(example.national_number)
    tail = draw(st.integers(0, 99))
    example.national_number = (
        int(national[:-2] + f"{tail:02d}") if len(national) > 3 else example.national_number
    )
    assume(phonenumbers.is_valid_number(example))
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)


@SETTINGS
@given(valid_e164())
def test_valid_e164_numbers_are_accepted_as_is(number):
    """Valid numbers written in E.164 are accepted and kept exactly."""
    assert _accepts(rules.parse_e164, number, "send_from_phone_number") == number


@SETTINGS
@given(
    st.one_of(
        valid_e164().map(lambda n: n[1:]),  # no plus
        valid_e164().map(lambda n: n[:3] + " " + n[3:]),  # a space
        valid_e164().map(lambda n: n + "0000000000"),  # too long
        valid_e164().map(lambda n: n[:-1] + "x"),  # a letter
        st.from_regex(r"\A\+0[0-9]{5,12}\Z"),  # country code 0
        st.just("+1"),
        st.just("+"),
        st.text(printable, max_size=20).filter(lambda s: not s.startswith("+")),
        not_a_string,
    )
)
def test_invalid_numbers_are_rejected_on_the_field(value):
    """Not E.164 (no plus, spaces, letters, too long) or not a number at all: on that field."""
    _rejects(rules.parse_e164, value, "send_from_phone_number", "send_from_phone_number")


# --- email addresses ----------------------------------------------------------------------------

atom = st.text("abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+/=?^_`{|}~-", min_size=1, max_size=12)
label = st.from_regex(r"\A[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?\Z")
valid_local = st.lists(atom, min_size=1, max_size=3).map(".".join)
valid_domain = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(label, min_size=1, max_size=3),
    st.sampled_from(["com", "org", "net", "io", "de", "co.uk"]),
)


@SETTINGS
@given(valid_local, valid_domain)
def test_valid_addresses_are_accepted_with_their_domain(local, domain):
    """Dot-atom local parts on ordinary domains: accepted; the domain is returned lower-case."""
    address, parsed_domain = _accepts(
        rules.parse_email_address, f"{local}@{domain.upper()}", "send_from_email"
    )
    assert parsed_domain == domain
    assert address == f"{local}@{domain}"


@SETTINGS
@given(
    st.one_of(
        st.builds(lambda local, d: f"{local}{d}", valid_local, valid_domain),  # no @
        st.builds(lambda local, d: f"{local}@@{d}", valid_local, valid_domain),
        st.builds(lambda local, d: f".{local}@{d}", valid_local, valid_domain),
        st.builds(lambda local, d: f"{local}..x@{d}", valid_local, valid_domain),
        st.builds(lambda local, d: f"{local} x@{d}", valid_local, valid_domain),
        st.builds(lambda d: f"@{d}", valid_domain),
        st.builds(lambda local: f"{local}@", valid_local),
        st.builds(lambda local, d: f"{local}@-{d}", valid_local, valid_domain),
        st.builds(lambda local: f"{local}@localhost", valid_local),
        not_a_string,
    )
)
def test_invalid_addresses_are_rejected_on_the_field(value):
    """Missing or doubled @, bad dots, spaces, bad domains, non-strings: on that field."""
    _rejects(rules.parse_email_address, value, "send_from_email", "send_from_email")


# --- through check_channel ------------------------------------------------------------------------


@DB_SETTINGS
@given(name=valid_names, metadata=valid_metadata)
def test_check_channel_accepts_every_valid_name_and_metadata(setup, name, metadata):
    """A whole valid email channel with any valid name and metadata passes every rule."""
    draft = rules.check_channel(setup.tenant.id, setup.email_payload(name=name, metadata=metadata))
    assert draft.name == unicodedata.normalize("NFC", name.strip()) and draft.metadata == metadata


@DB_SETTINGS
@given(
    field_and_value=st.one_of(
        st.tuples(
            st.just("name"),
            st.text(printable, min_size=101, max_size=120).filter(lambda s: len(s.strip()) > 100),
        ),
        st.tuples(
            st.just("metadata"),
            st.dictionaries(metadata_keys, metadata_values, min_size=51, max_size=55),
        ),
        st.tuples(st.just("send_from_phone_number"), valid_e164().map(lambda n: n[1:])),
        st.tuples(
            st.just("send_from_email"),
            st.builds(lambda local: f"{local}@@example.com", valid_local),
        ),
    )
)
def test_check_channel_rejects_each_invalid_value_on_its_field_only(setup, field_and_value):
    """One invalid value in an otherwise valid channel: the error names that field and no other."""
    field, value = field_and_value
    payload = setup.sms_payload() if field == "send_from_phone_number" else setup.email_payload()
    payload[field] = value
    with pytest.raises(ValidationFailed) as failure:
        rules.check_channel(setup.tenant.id, payload)
    assert set(failure.value.fields) == {field}
