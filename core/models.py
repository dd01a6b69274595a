"""The data model of DESIGN §2. Every tenant-owned table carries ``tenant_id``.

Rules about what a valid channel is live in ``core.rules``; the database adds the last line of
defence (unique names, one default per type, type-consistent address columns).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db_types import PortableJSON, UTCDateTime, new_id, utcnow
from core.extensions import db

CHANNEL_TYPES = ("email", "sms")
# The address fields each channel type uses (the other type's are absent, not null).
CHANNEL_TYPE_FIELDS = {
    "email": ("send_from_email", "email_domain_id"),
    "sms": ("send_from_phone_number", "phone_number_id"),
}
CHANNEL_STATUSES = ("available", "pending_verification", "disabled")
# A PATCH may also set ``status`` (to "disabled", or back to "available").
CHANNEL_STATUS_CHOICES = ("available", "disabled")
INTEGRATION_STATUSES = ("active", "disabled")
# ``at_risk``: verified, but the last scheduled check(s) did not find the ownership record; its
# channels still send until DOMAIN_GRACE_CHECKS such checks in a row make it ``failed``.
EMAIL_DOMAIN_STATUSES = ("pending", "verified", "at_risk", "failed")
EMAIL_DOMAIN_SENDING_STATUSES = ("verified", "at_risk")
# ``pending``: never checked; ``missing``: no such record; ``mismatch``: found, another value;
# ``error``: DNS did not answer (timeout, SERVFAIL, refused): temporary, never counted.
DNS_RECORD_STATUSES = ("pending", "verified", "missing", "mismatch", "error")
PHONE_NUMBER_STATUSES = ("active", "released")


def _id_column() -> Mapped[str]:
    return mapped_column(String(36), primary_key=True, default=new_id)


def _tenant_column(index: bool = True) -> Mapped[str]:
    """The owning tenant. ``index=False`` where a tenant-first composite index already serves
    lookups by tenant (an index on tenant_id alone would only cost a write per insert)."""
    return mapped_column(String(36), ForeignKey("tenants.id"), nullable=False, index=index)


def _created_column() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class Tenant(db.Model):
    __tablename__ = "tenants"

    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    # casefold() of the name, as for channels: the tenant switcher's search ignores case in every
    # script on every backend (SQLite's lower() knows only ASCII, PostgreSQL's its locale).
    name_key: Mapped[str] = mapped_column(String(400), nullable=False)
    slug: Mapped[str] = mapped_column(String(63), nullable=False, unique=True)
    created_at: Mapped[datetime] = _created_column()
    # The tenant's MFA policy: every admin must have a second factor (core.services.mfa).
    require_mfa: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=text("false")
    )


class User(db.Model):
    __tablename__ = "users"
    LABEL = "User"  # in "User not found."
    __table_args__ = (
        CheckConstraint(
            "(role = 'admin' AND tenant_id IS NOT NULL)"
            " OR (role = 'support' AND tenant_id IS NULL)",
            name="role_tenant",
        ),
    )

    id: Mapped[str] = _id_column()
    # Stored lower-cased, so the unique constraint is case-insensitive on every backend.
    email: Mapped[str] = mapped_column(String(254), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    tenant_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("tenants.id"), nullable=True, index=True
    )
    created_at: Mapped[datetime] = _created_column()
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Set when someone else chose the password (a teammate, an operator): the user must choose
    # their own at sign-in before anything else (blueprints/console/account.py's gate).
    password_change_required: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)

    tenant: Mapped[Tenant | None] = relationship()

    # Flask-Login protocol.
    is_active = True
    is_anonymous = False
    is_authenticated = True

    def get_id(self) -> str:
        return self.id

    @property
    def is_support(self) -> bool:
        return self.role == "support"


class ConsoleSession(db.Model):
    """A signed-in console session (DESIGN §7). The browser holds a random token; only its
    SHA-256 is stored, so a leaked table opens nothing. Ending a session deletes its row: a
    copy of the cookie then matches nothing. Rows go with their user (ON DELETE CASCADE).
    Sessions belong to a user, not a tenant (support staff have none), so no tenant_id."""

    __tablename__ = "console_sessions"

    id: Mapped[str] = _id_column()
    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at: Mapped[datetime] = _created_column()
    # Written at most once a minute (core.services.console_sessions.TOUCH_RESOLUTION).
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    ip: Mapped[str | None] = mapped_column(String(45), nullable=True)
    user_agent: Mapped[str] = mapped_column(String(512), nullable=False, default="")
    # When the user last proved who they are in this session (sign-in, or a confirmation with
    # a password or a factor): sensitive actions need it within REAUTH_MINUTES.
    authenticated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The sensitive action waiting for that confirmation (its form, Fernet-encrypted: it may
    # hold an integration's new credentials); cleared once it ran (core.services.step_up).
    pending_action: Mapped[str | None] = mapped_column(Text, nullable=True)


class TotpFactor(db.Model):
    """A user's authenticator app (TOTP, RFC 6238). The seed is Fernet-encrypted; it is shown
    only while the enrollment is unconfirmed. ``last_used_step`` is the time step of the last
    accepted code: a code of that step or an earlier one is refused (no replay)."""

    __tablename__ = "totp_factors"

    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    secret_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_used_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = _created_column()


class RecoveryCode(db.Model):
    """A single-use recovery code: only a SHA-256 of the code (80 random bits) is stored."""

    __tablename__ = "recovery_codes"

    id: Mapped[str] = _id_column()
    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = _created_column()


class Passkey(db.Model):
    """A WebAuthn credential of a user (a passkey, discoverable): the credential id and the
    COSE public key (base64url), its signature counter and the name the user gave it."""

    __tablename__ = "passkeys"

    id: Mapped[str] = _id_column()
    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    credential_id: Mapped[str] = mapped_column(String(1400), nullable=False, unique=True)
    public_key: Mapped[str] = mapped_column(Text, nullable=False)
    sign_count: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    transports: Mapped[list] = mapped_column(PortableJSON, nullable=False, default=list)
    backed_up: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = _created_column()
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ApiKey(db.Model):
    __tablename__ = "api_keys"
    LABEL = "API key"  # in "API key not found."

    id: Mapped[str] = _id_column()
    tenant_id: Mapped[str] = _tenant_column()
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    prefix: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    secret_hash: Mapped[str] = mapped_column(String(128), nullable=False)
    scope: Mapped[str] = mapped_column(String(8), nullable=False, default="write")
    created_at: Mapped[datetime] = _created_column()
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Integration(db.Model):
    __tablename__ = "integrations"
    LABEL = "Integration"  # in "Integration not found."
    __table_args__ = (Index("ix_integrations_tenant_created", "tenant_id", "created_at", "id"),)

    id: Mapped[str] = _id_column()
    tenant_id: Mapped[str] = _tenant_column(index=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    channel_type: Mapped[str] = mapped_column(String(8), nullable=False)
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    # Fernet token of the JSON credentials (core.crypto); never serialised as such.
    credentials_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active")
    created_at: Mapped[datetime] = _created_column()
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_check_ok: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    last_check_message: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # Health (DESIGN §9): failed checks in a row; unhealthy since INTEGRATION_FAILURE_CHECKS.
    failed_checks: Mapped[int] = mapped_column(nullable=False, default=0, server_default="0")
    unhealthy_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The scheduler's bookkeeping: when the next check is due, and the lease of the worker
    # checking it now (``check_claim`` is that worker's claim token).
    next_check_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime(), nullable=True, default=utcnow, index=True
    )
    check_claim: Mapped[str | None] = mapped_column(String(36), nullable=True)
    check_lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class EmailDomain(db.Model):
    __tablename__ = "email_domains"
    LABEL = "Email domain"  # in "Email domain not found."
    __table_args__ = (
        UniqueConstraint("tenant_id", "domain", name="uq_email_domains_tenant_domain"),
        Index("ix_email_domains_tenant_created", "tenant_id", "created_at", "id"),
    )

    id: Mapped[str] = _id_column()
    tenant_id: Mapped[str] = _tenant_column(index=False)
    domain: Mapped[str] = mapped_column(String(253), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    verification_token: Mapped[str] = mapped_column(String(64), nullable=False)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Outcome of the last DNS check, per record purpose: {"verification": "verified", ...}.
    record_statuses: Mapped[dict] = mapped_column(PortableJSON, nullable=False, default=dict)
    # Per purpose: {"found": [values, truncated], "last_checked_at", "last_verified_at"}.
    record_details: Mapped[dict | None] = mapped_column(PortableJSON, nullable=True, default=dict)
    created_at: Mapped[datetime] = _created_column()
    # The lifecycle of DESIGN §9: the verification window (opened by adding the domain,
    # "Verify", or a lost verification), the grace count and since when the domain is at risk.
    window_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    failed_checks: Mapped[int] = mapped_column(nullable=False, default=0, server_default="0")
    at_risk_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The scheduler's bookkeeping, as on integrations.
    next_check_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime(), nullable=True, default=utcnow, index=True
    )
    check_claim: Mapped[str | None] = mapped_column(String(36), nullable=True)
    check_lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class PhoneNumber(db.Model):
    __tablename__ = "phone_numbers"
    LABEL = "Phone number"  # in "Phone number not found."
    __table_args__ = (
        # Unique platform-wide among numbers in use; a released number may be added again.
        Index(
            "uq_phone_numbers_active_number",
            "phone_number",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        Index("ix_phone_numbers_tenant_created", "tenant_id", "created_at", "id"),
    )

    id: Mapped[str] = _id_column()
    tenant_id: Mapped[str] = _tenant_column(index=False)
    phone_number: Mapped[str] = mapped_column(String(16), nullable=False)
    integration_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("integrations.id"), nullable=False, index=True
    )
    capabilities: Mapped[list] = mapped_column(PortableJSON, nullable=False, default=list)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active")
    created_at: Mapped[datetime] = _created_column()
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    integration: Mapped[Integration] = relationship()


class Channel(db.Model):
    __tablename__ = "channels"
    LABEL = "Channel"  # in "Channel not found."
    __table_args__ = (
        UniqueConstraint("tenant_id", "name_key", name="uq_channels_tenant_name_key"),
        # At most one default per (tenant, type): concurrent requests can never leave two.
        Index(
            "uq_channels_one_default_per_type",
            "tenant_id",
            "channel_type",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
        Index("ix_channels_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_channels_tenant_type_created", "tenant_id", "channel_type", "created_at", "id"),
        Index("ix_channels_tenant_status_created", "tenant_id", "status", "created_at", "id"),
        Index("ix_channels_email_domain", "email_domain_id"),
        Index("ix_channels_phone_number", "phone_number_id"),
        Index("ix_channels_integration", "integration_id"),
        CheckConstraint(
            "(channel_type = 'email' AND send_from_email IS NOT NULL"
            " AND email_domain_id IS NOT NULL"
            " AND send_from_phone_number IS NULL AND phone_number_id IS NULL)"
            " OR (channel_type = 'sms' AND send_from_phone_number IS NOT NULL"
            " AND phone_number_id IS NOT NULL AND send_from_email IS NULL"
            " AND email_domain_id IS NULL)",
            name="type_fields",
        ),
        CheckConstraint(
            "status IN ('available', 'pending_verification', 'disabled')", name="status"
        ),
    )

    id: Mapped[str] = _id_column()
    tenant_id: Mapped[str] = _tenant_column(index=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    # casefold() of the name: case-insensitive uniqueness and search on every backend.
    name_key: Mapped[str] = mapped_column(String(400), nullable=False)
    channel_type: Mapped[str] = mapped_column(String(8), nullable=False)
    integration_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("integrations.id"), nullable=False
    )
    send_from_email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    email_domain_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("email_domains.id"), nullable=True
    )
    send_from_phone_number: Mapped[str | None] = mapped_column(String(16), nullable=True)
    phone_number_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("phone_numbers.id"), nullable=True
    )
    # The admin's switch; ``status`` is derived from it and the linked resources (core.rules).
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    status: Mapped[str] = mapped_column(String(24), nullable=False)
    is_default: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    metadata_: Mapped[dict] = mapped_column("metadata", PortableJSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = _created_column()
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    integration: Mapped[Integration] = relationship(lazy="joined", innerjoin=True)
    email_domain: Mapped[EmailDomain | None] = relationship(lazy="joined")
    phone_number: Mapped[PhoneNumber | None] = relationship(lazy="joined")


# "Is the default" as the partial index uq_channels_one_default_per_type states it, verbatim:
# SQLite uses a partial index only when the query repeats the index's WHERE term (it does not
# treat ``is_default = 1`` or ``IS 1`` as the same), so the default lookups would otherwise scan
# all of a tenant's channels of the type.
CHANNEL_IS_DEFAULT = text("channels.is_default")


class AuditEvent(db.Model):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_audit_events_resource", "tenant_id", "resource_type", "resource_id"),
    )

    id: Mapped[str] = _id_column()
    tenant_id: Mapped[str] = _tenant_column(index=False)
    actor_type: Mapped[str] = mapped_column(String(16), nullable=False)  # user|api_key|system
    actor_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    actor_name: Mapped[str] = mapped_column(String(254), nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    resource_type: Mapped[str] = mapped_column(String(32), nullable=False)
    resource_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    changes: Mapped[dict] = mapped_column(PortableJSON, nullable=False, default=dict)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ip: Mapped[str | None] = mapped_column(String(45), nullable=True)
    created_at: Mapped[datetime] = _created_column()


class PlatformEvent(db.Model):
    """The platform log: events about support staff, who belong to no tenant (DESIGN §7) —
    their authentication events and their access to tenants. Shaped like ``AuditEvent`` but
    without a tenant, in a table of its own, so that no tenant query can ever reach it."""

    __tablename__ = "platform_events"
    __table_args__ = (Index("ix_platform_events_created", "created_at", "id"),)

    id: Mapped[str] = _id_column()
    actor_type: Mapped[str] = mapped_column(String(16), nullable=False)  # user|system
    actor_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    actor_name: Mapped[str] = mapped_column(String(254), nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    resource_type: Mapped[str] = mapped_column(String(32), nullable=False)
    resource_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    changes: Mapped[dict] = mapped_column(PortableJSON, nullable=False, default=dict)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ip: Mapped[str | None] = mapped_column(String(45), nullable=True)
    created_at: Mapped[datetime] = _created_column()


# An Idempotency-Key: 1 to 255 visible ASCII characters (no spaces), as the API documents it.
IDEMPOTENCY_KEY_MAX = 255
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]+$"


class IdempotencyRecord(db.Model):
    """The first response to a POST carrying an ``Idempotency-Key``, replayed for 24 hours."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("tenant_id", "key", name="uq_idempotency_tenant_key"),)

    id: Mapped[str] = _id_column()
    tenant_id: Mapped[str] = _tenant_column(index=False)
    key: Mapped[str] = mapped_column(String(IDEMPOTENCY_KEY_MAX), nullable=False)
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    response_status: Mapped[int | None] = mapped_column(nullable=True)
    response_body: Mapped[str | None] = mapped_column(Text, nullable=True)
    response_headers: Mapped[dict] = mapped_column(PortableJSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = _created_column()


# --- events, webhooks (DESIGN §8) --------------------------------------------------------------

WEBHOOK_ENDPOINT_STATUSES = ("enabled", "disabled")
WEBHOOK_DELIVERY_STATUSES = ("pending", "delivered", "failed")


class WebhookEndpoint(db.Model):
    """A tenant's receiver of events: URL, subscribed event types, signing secret(s).

    The secret is encrypted at rest (``core.crypto``); after a rotation the previous secret
    keeps signing beside the new one until ``previous_secret_expires_at``. ``failing_since`` is
    the first failed attempt since the last success (the three-day disable counts from it).
    """

    __tablename__ = "webhook_endpoints"
    LABEL = "Webhook endpoint"  # in "Webhook endpoint not found."
    __table_args__ = (
        Index("ix_webhook_endpoints_tenant_created", "tenant_id", "created_at", "id"),
    )

    id: Mapped[str] = _id_column()
    tenant_id: Mapped[str] = _tenant_column(index=False)
    url: Mapped[str] = mapped_column(String(2048), nullable=False)
    description: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    events: Mapped[list] = mapped_column(PortableJSON, nullable=False, default=list)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="enabled")
    # Why it is disabled: "manual" (someone disabled it) or "failing" (no success for 3 days).
    disabled_reason: Mapped[str | None] = mapped_column(String(16), nullable=True)
    secret_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime(), nullable=True
    )
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = _created_column()
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Event(db.Model):
    """The transactional outbox: one row per event, written in the transaction of its change.

    ``sequence`` counts the events of one resource (tenant, resource type, resource id) from 1:
    receivers order a resource's events by it.
    """

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint(
            "tenant_id", "resource_type", "resource_id", "sequence", name="uq_events_sequence"
        ),
        Index("ix_events_tenant_created", "tenant_id", "created_at", "id"),
    )

    id: Mapped[str] = _id_column()
    tenant_id: Mapped[str] = _tenant_column(index=False)
    type: Mapped[str] = mapped_column(String(64), nullable=False)
    resource_type: Mapped[str] = mapped_column(String(32), nullable=False)
    resource_id: Mapped[str] = mapped_column(String(36), nullable=False)
    sequence: Mapped[int] = mapped_column(nullable=False)
    payload: Mapped[dict] = mapped_column(PortableJSON, nullable=False)
    created_at: Mapped[datetime] = _created_column()


class WebhookDelivery(db.Model):
    """One event for one endpoint: the outbox row the dispatcher hands to the task engine.

    ``next_attempt_at`` is when it is due; ``enqueued_at`` when it was last handed to the engine
    (the sweeper re-enqueues rows handed long ago and never finished); ``locked_until`` is the
    lease of the worker delivering it (a killed worker's lease runs out).
    """

    __tablename__ = "webhook_deliveries"
    LABEL = "Webhook delivery"  # in "Webhook delivery not found."
    __table_args__ = (
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at", "id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[str] = _id_column()
    tenant_id: Mapped[str] = _tenant_column()
    endpoint_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False
    )
    event_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("events.id", ondelete="CASCADE"), nullable=False, index=True
    )
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(nullable=False, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_response: Mapped[str | None] = mapped_column(Text, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = _created_column()

    endpoint: Mapped[WebhookEndpoint] = relationship(lazy="joined")
    event: Mapped[Event] = relationship(lazy="joined")


IMPORT_KINDS = ("channels", "phone_numbers")
IMPORT_STATUSES = ("previewed", "queued", "running", "done", "cancelled", "failed")


class ImportJob(db.Model):
    """A CSV import of the console (DESIGN §10): the uploaded file, kept server-side with its
    tenant, and the background task's progress (``core.services.imports``)."""

    __tablename__ = "import_jobs"
    LABEL = "Import"
    __table_args__ = (
        Index("ix_import_jobs_tenant_created", "tenant_id", "created_at"),
        Index("ix_import_jobs_status_lease", "status", "lease_until"),
    )

    id: Mapped[str] = _id_column()
    tenant_id: Mapped[str] = _tenant_column(index=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="previewed")
    filename: Mapped[str] = mapped_column(String(255), nullable=False)
    content: Mapped[str] = mapped_column(Text, nullable=False)
    total_rows: Mapped[int] = mapped_column(nullable=False, default=0)
    processed_rows: Mapped[int] = mapped_column(nullable=False, default=0)
    created_rows: Mapped[int] = mapped_column(nullable=False, default=0)
    refused_rows: Mapped[int] = mapped_column(nullable=False, default=0)
    refused_csv: Mapped[str] = mapped_column(Text, nullable=False, default="")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_by: Mapped[str] = mapped_column(String(320), nullable=False)
    created_at: Mapped[datetime] = _created_column()
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The lease (``core.services.imports.claim``): a queued job must be started, a running one
    # must commit its next chunk, before ``lease_until``; else the sweeper queues it again.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    claim_token: Mapped[str | None] = mapped_column(String(36), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)  # why a job failed
