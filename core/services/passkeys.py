"""Passkeys (WebAuthn, py_webauthn): register, list, remove, and verify an assertion.

- Credentials are discoverable (``residentKey: required``), so a passkey also signs in on its
  own ("Sign in with a passkey": no email, no password, no code). That sign-in requires user
  verification (the device's PIN or biometrics), which makes the passkey two factors by
  itself; as a second factor after the password, verification is only preferred.
- The user handle is the user's id (a random UUID: no personal data in the authenticator).
- The relying party id and origin come from ``WEBAUTHN_RP_ID`` / ``WEBAUTHN_ORIGIN`` when set,
  else from the request's host and scheme (``TRUSTED_PROXIES`` decides what the request says
  behind a proxy). The browser binds every response to the origin it saw and the authenticator
  to the RP id, and both are checked here, so a look-alike site cannot use a response.
- The signature counter is stored; a counter that goes backwards (a cloned authenticator) is
  refused by py_webauthn. Synced passkeys report 0 for ever, which passes.
- Challenges are made here and kept by the caller (the console keeps the current one in the
  signed session cookie, bound to its purpose, for five minutes, and drops it when used).
- Nothing of a credential (id, public key, attestation) is ever rendered back or logged: the
  account page lists a passkey by the name its owner gave it; assertion options carry no
  ``allowCredentials``. The one exception is the registration options, which name the user's
  own credentials (``excludeCredentials``, for the signed-in owner only) so that an
  authenticator is not registered twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from flask import current_app, request
from sqlalchemy import select
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from core import rules
from core.db_types import utcnow
from core.errors import Conflict, FieldErrors, NotFound
from core.extensions import db
from core.models import Passkey, User
from core.services import mfa

RP_NAME = "Channels"
TIMEOUT_MS = 120_000
CREDENTIAL_JSON_MAX = 64 * 1024
NAME_MAX = 100
_TRANSPORTS = {t.value for t in AuthenticatorTransport}


def rp_id() -> str:
    """The relying party id: WEBAUTHN_RP_ID, else the request's host name."""
    return current_app.config.get("WEBAUTHN_RP_ID") or request.host.rsplit(":", 1)[0].strip("[]")


def origin() -> str:
    """The console's origin: WEBAUTHN_ORIGIN, else the request's scheme and host."""
    configured = current_app.config.get("WEBAUTHN_ORIGIN")
    if configured:
        return configured
    return f"{request.scheme}://{request.host}"


def _user_handle(user: User) -> bytes:
    return user.id.encode()


def _descriptors(passkeys: list[Passkey]) -> list[PublicKeyCredentialDescriptor]:
    return [
        PublicKeyCredentialDescriptor(
            id=base64url_to_bytes(p.credential_id),
            transports=[AuthenticatorTransport(t) for t in p.transports if t in _TRANSPORTS],
        )
        for p in passkeys
    ]


def passkeys_of(user_id: str) -> list[Passkey]:
    """The user's passkeys, oldest first."""
    return list(
        db.session.scalars(
            select(Passkey).where(Passkey.user_id == user_id).order_by(Passkey.created_at)
        )
    )


@dataclass(frozen=True)
class Options:
    """A ceremony's options for the browser (JSON) and the challenge to keep for the answer."""

    json: str
    challenge: str  # base64url


def registration_options(user: User) -> Options:
    """Options to create a discoverable passkey for ``user`` (their others excluded)."""
    options = generate_registration_options(
        rp_id=rp_id(),
        rp_name=RP_NAME,
        user_id=_user_handle(user),
        user_name=user.email,
        user_display_name=user.name or user.email,
        timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=_descriptors(passkeys_of(user.id)),
    )
    return Options(options_to_json(options), bytes_to_base64url(options.challenge))


def authentication_options(user: User | None) -> Options:
    """Options to assert a passkey: for ``user`` (second factor, confirmation: verification
    preferred) or for passkey sign-in (``None``: verification required).

    Never with ``allowCredentials``: every passkey here is discoverable, so the browser finds
    the site's passkeys itself, and the answer's credential is checked against ``user``'s. So
    no response names a user's credentials, and knowing a password reveals nothing about the
    account's authenticators.
    """
    requirement = (
        UserVerificationRequirement.REQUIRED
        if user is None
        else UserVerificationRequirement.PREFERRED
    )
    options = generate_authentication_options(
        rp_id=rp_id(), timeout=TIMEOUT_MS, user_verification=requirement
    )
    return Options(options_to_json(options), bytes_to_base64url(options.challenge))


def _parse(credential_json: object) -> dict | None:
    """The browser's PublicKeyCredential JSON as a dict, or None (absent, too big, not JSON)."""
    if not isinstance(credential_json, str) or not credential_json:
        return None
    if len(credential_json) > CREDENTIAL_JSON_MAX:
        return None
    try:
        value = json.loads(credential_json)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def register_passkey(
    user: User, name: str, credential_json: object, challenge: str | None, keep_session_id
) -> tuple[Passkey, list[str] | None]:
    """Verify a new passkey's registration and store it (audited ``user.factor_enrolled``;
    every other session ends). Returns it and, for the user's first factor, the new recovery
    codes (shown once)."""
    errors = FieldErrors()
    clean = rules.clean_name(name, errors)
    credential = _parse(credential_json)
    if credential is None or not challenge:
        errors.add("credential", "The browser did not create a passkey. Try again.")
    errors.raise_if_any("The passkey was not added.")
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=base64url_to_bytes(challenge),
            expected_rp_id=rp_id(),
            expected_origin=origin(),
            require_user_verification=False,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        current_app.logger.info("passkey registration refused: %s", type(exc).__name__)
        errors.add("credential", "This passkey could not be verified. Try again.")
        errors.raise_if_any("The passkey was not added.")
    credential_id = bytes_to_base64url(verified.credential_id)
    if db.session.scalar(select(Passkey.id).where(Passkey.credential_id == credential_id)):
        raise Conflict("This passkey is already registered.")
    transports = credential.get("response", {}).get("transports") or []
    first = not mfa.has_factor(user.id)
    passkey = Passkey(
        user_id=user.id,
        name=clean,
        credential_id=credential_id,
        public_key=bytes_to_base64url(verified.credential_public_key),
        sign_count=verified.sign_count,
        transports=[t for t in transports if isinstance(t, str) and t in _TRANSPORTS],
        backed_up=verified.credential_backed_up,
        created_at=utcnow(),
    )
    db.session.add(passkey)
    db.session.flush()
    mfa._factor_changed(
        user,
        "user.factor_enrolled",
        {"factor": {"before": None, "after": "passkey"}, "name": {"before": None, "after": clean}},
        keep_session_id,
    )
    return passkey, (mfa._replace_recovery_codes(user) if first else None)


def remove_passkey(user: User, passkey_id: str, keep_session_id: str | None) -> Passkey:
    """Remove one of the user's passkeys (NotFound for anyone else's; the last factor stays
    while MFA is required)."""
    passkey = None
    if isinstance(passkey_id, str) and len(passkey_id) <= 36:
        passkey = db.session.scalar(
            select(Passkey).where(Passkey.id == passkey_id, Passkey.user_id == user.id)
        )
    if passkey is None:
        raise NotFound("Passkey not found.")
    mfa.refuse_removing_last_factor(user, "passkey")
    db.session.delete(passkey)
    db.session.flush()
    mfa._drop_recovery_codes_without_factor(user.id)
    mfa._factor_changed(
        user,
        "user.factor_removed",
        {
            "factor": {"before": "passkey", "after": None},
            "name": {"before": passkey.name, "after": None},
        },
        keep_session_id,
    )
    return passkey


def verify_assertion(
    credential_json: object, challenge: str | None, user: User | None, purpose: str
) -> tuple[User | None, str | None]:
    """Check a passkey assertion: of ``user``'s passkeys, or (``user`` None: passkey sign-in)
    of any user's, found by the credential and its user handle, user verification required.
    Returns (the user, None) or (the user if known, the message to show); failures of a known
    user are audited and counted against RATELIMIT_MFA (the caller commits either way)."""
    credential = _parse(credential_json)
    passkey = None
    if credential is not None and isinstance(credential.get("id"), str):
        passkey = db.session.scalar(
            select(Passkey).where(Passkey.credential_id == credential["id"][:1400])
        )
    owner = db.session.get(User, passkey.user_id) if passkey is not None else None
    message = "This passkey was not accepted. Try again, or use another way."
    if user is not None and (owner is None or owner.id != user.id):
        return user, mfa.factor_refused(user, "passkey", purpose, message).fields["code"][0]
    if owner is None or not challenge:
        return None, message
    if not mfa.factor_attempts_allowed(owner.id):
        return owner, mfa.FACTOR_LIMIT_MESSAGE
    handle = (credential.get("response") or {}).get("userHandle")
    if user is None and handle != bytes_to_base64url(_user_handle(owner)):
        return owner, mfa.factor_refused(owner, "passkey", purpose, message).fields["code"][0]
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=base64url_to_bytes(challenge),
            expected_rp_id=rp_id(),
            expected_origin=origin(),
            credential_public_key=base64url_to_bytes(passkey.public_key),
            credential_current_sign_count=passkey.sign_count,
            require_user_verification=user is None,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        current_app.logger.info("passkey assertion refused: %s", type(exc).__name__)
        return owner, mfa.factor_refused(owner, "passkey", purpose, message).fields["code"][0]
    passkey.sign_count = verified.new_sign_count
    passkey.backed_up = verified.credential_backed_up
    passkey.last_used_at = utcnow()
    db.session.flush()
    mfa.factor_verified(owner, "passkey", purpose)
    return owner, None
