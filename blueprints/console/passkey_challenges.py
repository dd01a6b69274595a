"""The challenge of the passkey ceremony in progress, kept in the browser's signed session.

One challenge at a time, bound to its purpose (``register``, ``sign-in``, ``second-factor``,
``confirm``) and to the user it was made for, valid for ``CHALLENGE_TTL`` and taken out of the
session when an answer is checked, so an answer is checked against it at most once. The
challenge is random and not secret (it is signed by the authenticator, not kept from anyone);
the cookie's signature keeps it from being changed.
"""

from __future__ import annotations

import time

from flask import jsonify, session

from core.services.passkeys import Options

CHALLENGE_KEY = "passkey_challenge"
CHALLENGE_TTL = 300  # seconds: the browser's own timeout is 120 s


def issue(purpose: str, options: Options, user_id: str | None = None):
    """Keep the options' challenge for ``purpose``; the JSON response carrying the options."""
    session[CHALLENGE_KEY] = {
        "purpose": purpose,
        "challenge": options.challenge,
        "user": user_id,
        "at": int(time.time()),
    }
    response = jsonify(publicKey=_loads(options.json))
    return response


def take(purpose: str, user_id: str | None = None) -> str | None:
    """The challenge issued for ``purpose`` (and user), removed from the session; None when
    there is none, it is for something else, or it is too old."""
    kept = session.pop(CHALLENGE_KEY, None)
    if not isinstance(kept, dict) or kept.get("purpose") != purpose:
        return None
    if kept.get("user") != user_id:
        return None
    if time.time() - float(kept.get("at") or 0) > CHALLENGE_TTL:
        return None
    challenge = kept.get("challenge")
    return challenge if isinstance(challenge, str) else None


def _loads(text: str) -> dict:
    import json

    return json.loads(text)
