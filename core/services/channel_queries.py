"""Read queries over channels shared by the API list and the console table.

Name search (``q=``) is a case-insensitive substring match on ``name_key``. On PostgreSQL the
pg_trgm GIN index of migration 0001 serves it. On SQLite, a selective search (3 characters or
more, at most ``SEARCH_FTS_MAX_MATCHES`` matching names platform-wide) is driven by the FTS5
trigram table of migration 0002: the matching rows are fetched by rowid and sorted, instead of
walking every channel of the tenant. A common term (more matches than that) walks the tenant's
channels newest first, which finds a page of matches after a few rows; its cost grows with the
tenant only when the term is common in other tenants and rare in this one.

``channel_choices`` lists what a channel of a type may use (integrations, email domains, phone
numbers): the rules' own predicates (``core.rules.*_refusal``) decide, so a form never offers a
row that ``check_channel`` would refuse, nor hides one it would accept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import Select, func, select, text

from core import rules
from core.extensions import db
from core.models import CHANNEL_IS_DEFAULT, Channel, EmailDomain, Integration, PhoneNumber

SEARCH_MAX = 100
SEARCH_FTS_TABLE = "channels_name_fts"
SEARCH_FTS_MIN_CHARS = 3  # the trigram tokenizer cannot match shorter strings
SEARCH_FTS_MAX_MATCHES = 1000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _fts_phrase(key: str) -> str:
    """An FTS5 phrase: with the trigram tokenizer, it matches the text as a substring."""
    return '"' + key.replace('"', '""') + '"'


def _use_sqlite_trigram_index(key: str) -> bool:
    """SQLite only: whether the FTS5 trigram table narrows this search to few enough rows."""
    if db.engine.dialect.name != "sqlite" or len(key) < SEARCH_FTS_MIN_CHARS:
        return False
    if _CONTROL.search(key):
        return False
    matches = (
        select(text("1"))
        .select_from(text(SEARCH_FTS_TABLE))
        .where(text(f"{SEARCH_FTS_TABLE} MATCH :phrase").bindparams(phrase=_fts_phrase(key)))
        .limit(SEARCH_FTS_MAX_MATCHES + 1)
        .subquery()
    )
    count = db.session.scalar(select(func.count()).select_from(matches))
    return count <= SEARCH_FTS_MAX_MATCHES


def _escape_like(value: str) -> str:
    """``value`` with LIKE's wildcards escaped (``\\`` is the escape character)."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def channel_list_query(
    tenant_id: str,
    channel_type: str | None = None,
    status: str | None = None,
    is_default: bool | None = None,
    q: str | None = None,
) -> Select:
    """The tenant's channels filtered by type, status, default flag and name substring."""
    needle = (q or "").strip()[:SEARCH_MAX]
    key = needle.casefold()
    if needle and _use_sqlite_trigram_index(key):
        # "+" keeps SQLite from walking the tenant's index for the ORDER BY: the few rows the
        # trigram table names are fetched by rowid and sorted instead.
        query = select(Channel).where(
            text("+channels.tenant_id = :search_tenant_id").bindparams(search_tenant_id=tenant_id),
            text(
                f"channels.rowid IN (SELECT rowid FROM {SEARCH_FTS_TABLE} "
                f"WHERE {SEARCH_FTS_TABLE} MATCH :search_phrase)"
            ).bindparams(search_phrase=_fts_phrase(key)),
        )
    else:
        query = select(Channel).where(Channel.tenant_id == tenant_id)
    if channel_type:
        query = query.where(Channel.channel_type == channel_type)
    if status:
        query = query.where(Channel.status == status)
    if is_default is not None:
        query = query.where(CHANNEL_IS_DEFAULT if is_default else Channel.is_default.is_(False))
    if needle:
        query = query.where(Channel.name_key.like(f"%{_escape_like(key)}%", escape="\\"))
    return query


@dataclass
class ChannelChoices:
    """The tenant's rows a channel of one type may use, in the order a form lists them."""

    integrations: list[Integration] = field(default_factory=list)
    email_domains: list[EmailDomain] = field(default_factory=list)
    phone_numbers: list[PhoneNumber] = field(default_factory=list)


def channel_choices(
    tenant_id: str, channel_type: str, current: Channel | None = None
) -> ChannelChoices:
    """The integrations, email domains (email) and phone numbers (SMS) of the tenant that a
    channel of ``channel_type`` may use, by the rules' predicates; plus, for an edited channel
    (``current``), the rows it uses now, so that a form shows what the channel is on."""
    kept: set[str] = set()
    if current is not None:
        kept = {current.integration_id, current.email_domain_id, current.phone_number_id} - {None}
    choices = ChannelChoices()
    integrations = db.session.scalars(
        select(Integration)
        .where(Integration.tenant_id == tenant_id)
        .order_by(Integration.name, Integration.id)
    )
    choices.integrations = [
        i for i in integrations if i.id in kept or not rules.integration_refusal(i, channel_type)
    ]
    if channel_type == "email":
        domains = db.session.scalars(
            select(EmailDomain)
            .where(EmailDomain.tenant_id == tenant_id)
            .order_by(EmailDomain.domain, EmailDomain.id)
        )
        choices.email_domains = [
            d for d in domains if d.id in kept or not rules.email_domain_refusal(d)
        ]
    elif channel_type == "sms":
        numbers = db.session.scalars(
            select(PhoneNumber)
            .where(PhoneNumber.tenant_id == tenant_id)
            .order_by(PhoneNumber.phone_number, PhoneNumber.id)
        )
        choices.phone_numbers = [
            n for n in numbers if n.id in kept or not rules.phone_number_refusal(n)
        ]
    return choices
