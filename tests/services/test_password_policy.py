"""The password policy (core.rules.passwords): what is refused, with which message, and what
passes. One table of refused passwords, one of accepted ones."""

from __future__ import annotations

import pytest

from core.errors import FieldErrors
from core.rules import passwords
from core.rules.passwords import (
    GUESSABLE,
    MAX_LENGTH,
    PERSONAL,
    TOO_LONG,
    TOO_SHORT,
    check_new_password,
    password_problem,
    personal_words,
)

EMAIL = "alice.martin@acme-widgets.example"
NAME = "Alice Martin"


@pytest.mark.parametrize(
    "password, starts_with, says",
    [
        # too short or too long (the length limits that existed stay: 10 at least)
        ("", TOO_SHORT, ""),
        ("Xq7#kd9!p", TOO_SHORT, ""),
        (None, TOO_SHORT, ""),
        ("word " * 26, TOO_LONG, ""),
        # common passwords: the top of the breach lists, as such or barely disguised
        ("password123", GUESSABLE, "very common password"),
        ("1234567890", GUESSABLE, "top-100 common password"),
        ("qwertyuiop", GUESSABLE, "top-100 common password"),
        ("iloveyou12", GUESSABLE, "similar to a commonly used password"),
        ("Password1234", GUESSABLE, "similar to a commonly used password"),
        ("P@ssw0rd2024", GUESSABLE, ""),
        ("sunshine2024", GUESSABLE, "similar to a commonly used password"),
        ("letmein12345", GUESSABLE, ""),
        ("trustno1trustno1", GUESSABLE, ""),
        # dictionary words, names and patterns an attacker tries first
        ("baseball", TOO_SHORT, ""),
        ("basketball1", GUESSABLE, ""),
        ("jennifer1985", GUESSABLE, ""),
        ("aaaaaaaaaaaa", GUESSABLE, "Repeats"),
        ("abcdefghijkl", GUESSABLE, ""),
        ("qazwsxedcrfv", GUESSABLE, ""),
        ("1qaz2wsx3edc", GUESSABLE, ""),
        ("01/02/2003!!", GUESSABLE, ""),
        # built on the account's own email address or name
        ("alice.martin@acme-widgets.example", PERSONAL, ""),
        ("martin-loves-horses", PERSONAL, ""),
        ("AliceInChains99", PERSONAL, ""),
        ("acme-widgets-rocket", PERSONAL, ""),
    ],
)
def test_refused_passwords(password, starts_with, says):
    """Each is refused with a message that starts with the reason and, for guessable ones,
    says why and how to do better."""
    problem = password_problem(password, EMAIL, NAME)
    assert problem is not None and problem.startswith(starts_with), problem
    assert says in problem
    if starts_with == GUESSABLE:
        assert len(problem) > len(GUESSABLE) + 10  # advice follows, never the bare verdict


@pytest.mark.parametrize(
    "password",
    [
        "correct-horse-battery",
        "channels-walkthrough",  # the seed-demo admin's (core.cli.DEMO_PASSWORD)
        "Tr0ub4dor&3 but longer",
        "mauve pelican outgrows tuesday",
        "x7#Kd9!pQ2",
        "ünïcödé-päss-wörd",
        "w" + "0rd-salad-" * 11 + "ok",  # 113 characters: long ones are fine
    ],
)
def test_accepted_passwords(password):
    """Passphrases and random strings pass, whatever their characters."""
    assert password_problem(password, EMAIL, NAME) is None


def test_the_length_bounds_are_inclusive():
    """10 and MAX_LENGTH characters pass the length rule; one fewer or one more does not."""
    assert password_problem("x7#Kd9!pQ2") is None
    assert password_problem("x7#Kd9!pQ") == TOO_SHORT
    long_one = "".join(chr(0x4E00 + (n * 7919) % 20000) for n in range(MAX_LENGTH))
    assert password_problem(long_one) is None
    assert password_problem(long_one + "x") == TOO_LONG


def test_personal_words_of_an_account():
    """The address, its local part and domain label and every 4+ letter part of them and of
    the name, casefolded; short parts are too common to refuse."""
    assert personal_words("Bo.Li@XY.example", "Bo Li") == ["bo.li", "bo.li@xy.example"]
    assert personal_words(EMAIL, NAME) == [
        "acme-widgets",
        "alice",
        "alice.martin",
        "alice.martin@acme-widgets.example",
        "martin",
    ]
    assert personal_words(None, None) == []


def test_without_an_account_only_the_other_rules_apply():
    """No email or name known: nothing is refused as personal."""
    assert password_problem("martin-loves-horses") is None


def test_check_new_password_puts_the_message_on_the_field():
    """The service helper adds the one message under the field it is given."""
    errors = FieldErrors()
    check_new_password("password123", errors, "new_password", email=EMAIL, name=NAME)
    [message] = errors.as_dict()["new_password"]
    assert message.startswith(GUESSABLE)
    errors = FieldErrors()
    check_new_password("mauve pelican outgrows tuesday", errors, email=EMAIL, name=NAME)
    assert not errors


def test_the_dictionaries_ship_with_the_package():
    """The estimator's lists are in the installed package (no network at run time): the breach
    list holds the 30,000 most common passwords."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    assert len(FREQUENCY_LISTS["passwords"]) >= 30_000
    assert "password" in FREQUENCY_LISTS["passwords"][:10]
    assert passwords.MIN_SCORE == 3
