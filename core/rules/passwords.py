"""The password policy (DESIGN §7): the one rule every password someone sets goes through.

Whoever sets it — the user on the account page (also the forced change at first sign-in), an
admin adding a teammate on the team page, an operator with ``create-user`` — the service calls
``check_new_password``. A password is refused when it is:

- shorter than ``MIN_LENGTH`` (10) or longer than ``MAX_LENGTH`` (128) characters;
- built on the user's own email address or name (``personal_words``);
- common or breached, or easy to guess from them: zxcvbn (Dropbox's estimator, the ``zxcvbn``
  package) scores it below ``MIN_SCORE`` (3 of 4: "safely unguessable", about 10^10 guesses).
  Its dictionaries ship with the package — the 30,000 most frequent passwords of public breach
  corpora, English words, names, surnames, TV and film words — and it sees through the usual
  disguises (capitals, l33t substitutions, appended digits and years, keyboard walks, repeats,
  sequences, dates). Nothing goes over the network, at any time.

Decisions: the message says why (zxcvbn's own warning when it has one, such as "This is a very
common password.") and how to do better, so that people are not left guessing; no composition
rules (digits, symbols) — NIST SP 800-63B and OWASP ASVS 5.0 advise against them. The upper
bound keeps hashing and estimation cheap (zxcvbn's work grows with the length) and is well above
what password managers generate; spaces and every Unicode character are allowed.
"""

from __future__ import annotations

import re

from zxcvbn import zxcvbn

from core.errors import FieldErrors

MIN_LENGTH = 10
MAX_LENGTH = 128
MIN_SCORE = 3
# Parts of an email address or a name shorter than this are too common to refuse on their own.
PERSONAL_WORD_MIN = 4
LENGTH_HELP = f"At least {MIN_LENGTH} characters; not a common password or one built on your name."
TOO_SHORT = f"Use at least {MIN_LENGTH} characters."
TOO_LONG = f"Use at most {MAX_LENGTH} characters."
PERSONAL = "Don’t build your password on your email address or name."
GUESSABLE = "This password is too easy to guess."
DEFAULT_ADVICE = (
    "Avoid common words, names, dates and keyboard patterns: a few unrelated words make a strong "
    "password."
)


def personal_words(email: str | None, name: str | None) -> list[str]:
    """The words of the user's email address and name a password must not be built on: the
    whole address, its local part, its domain's first label, and every part of these and of the
    name (split at anything but letters and digits) of at least ``PERSONAL_WORD_MIN``
    characters, casefolded."""
    words: set[str] = set()
    address = (email or "").strip().casefold()
    local, _, domain = address.partition("@")
    candidates = [address, local, domain.split(".")[0], *re.split(r"[\W_]+", local)]
    candidates += re.split(r"[\W_]+", (name or "").casefold())
    for word in candidates:
        if len(word) >= PERSONAL_WORD_MIN:
            words.add(word)
    return sorted(words)


def password_problem(password: object, email: str | None = None, name: str | None = None):
    """Why ``password`` may not be set, as one message for the person choosing it; None when
    it may. ``email`` and ``name`` are the account's (the new account's, on creation)."""
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        return TOO_SHORT
    if len(password) > MAX_LENGTH:
        return TOO_LONG
    words = personal_words(email, name)
    folded = password.casefold()
    if any(word in folded for word in words):
        return PERSONAL
    result = zxcvbn(password, user_inputs=words, max_length=MAX_LENGTH)
    if result["score"] >= MIN_SCORE:
        return None
    feedback = result["feedback"]
    advice = [feedback["warning"]] if feedback["warning"] else []
    advice += feedback["suggestions"][:1] or [DEFAULT_ADVICE]
    return " ".join([GUESSABLE, *advice])


def check_new_password(
    password: object,
    errors: FieldErrors,
    field_name: str = "password",
    *,
    email: str | None = None,
    name: str | None = None,
) -> None:
    """Add the policy's refusal of ``password`` (if any) to ``errors`` under ``field_name``."""
    problem = password_problem(password, email, name)
    if problem is not None:
        errors.add(field_name, problem)
