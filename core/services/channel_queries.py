"""Read queries over channels shared by the API list and the console table.

Name search (``q=``) is a case-insensitive substring match on ``name_key``. On PostgreSQL the
pg_trgm GIN index of migration 0001 serves it. On SQLite, a selective search (3 characters or
more, at most ``SEARCH_FTS_MAX_MATCHES`` matching names platform-wide) is driven by the FTS5
trigram table of migration 0002: the matching rows are fetched by rowid and sorted, instead of
walking every channel of the tenant. A common term (more matches than that) walks the tenant's
channels newest first, which finds a page of matches after a few rows; its cost grows with the
tenant only when the term is common in other tenants and rare in this one. On SQLite the API's
walk reads index entries only (``ix_channels_tenant_created_name`` of migration 0011 carries
``name_key``): it picks the page's rowids from the index, then fetches those rows; the rows it
passes over are never read (through ``ix_channels_tenant_created`` it read each whole row to test
one column: on a million rows with ten thousand newer non-matching channels, 5–6 ms a page).

``channel_choices`` lists what a channel of a type may use (integrations, email domains, phone
numbers): the rules' own predicates (``core.rules.*_refusal``) decide, so a form never offers a
row that ``check_channel`` would refuse, nor hides one it would accept.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass, field
from functools import cache

from sqlalchemy import (
    Integer,
    Select,
    and_,
    bindparam,
    func,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.orm import load_only

from core import events, rules
from core.database import read_alone
from core.errors import NotFound
from core.extensions import db
from core.models import CHANNEL_IS_DEFAULT, Channel, EmailDomain, Integration, PhoneNumber, Tenant
from core.pagination import decode_cursor, encode_cursor
from core.rules.values import CONTROL_CHARACTERS, name_key
from core.tenancy import lookup_id

SEARCH_MAX = 100
SEARCH_FTS_TABLE = "channels_name_fts"
SEARCH_FTS_MIN_CHARS = 3  # the trigram tokenizer cannot match shorter strings
SEARCH_FTS_MAX_MATCHES = 1000


def _fts_phrase(key: str) -> str:
    """An FTS5 phrase: with the trigram tokenizer, it matches the text as a substring."""
    return '"' + key.replace('"', '""') + '"'


@cache
def _fts_count_statement():
    """How many names match the phrase, counted up to ``:most`` (built once)."""
    matches = (
        select(text("1"))
        .select_from(text(SEARCH_FTS_TABLE))
        .where(text(f"{SEARCH_FTS_TABLE} MATCH :phrase"))
        .limit(bindparam("most", type_=Integer))
        .subquery()
    )
    return select(func.count()).select_from(matches)


def _use_sqlite_trigram_index(key: str, alone: bool = False) -> bool:
    """SQLite only: whether the FTS5 trigram table narrows this search to few enough rows.
    ``alone``: count outside the ORM session (``read_alone``), for a request whose page is read
    alone as well; the count only chooses the plan, the page's statement decides the rows."""
    if db.engine.dialect.name != "sqlite" or len(key) < SEARCH_FTS_MIN_CHARS:
        return False
    if CONTROL_CHARACTERS.search(key):
        return False
    params = {"phrase": _fts_phrase(key), "most": SEARCH_FTS_MAX_MATCHES + 1}
    if alone:
        count = read_alone(_fts_count_statement(), params)[0][0]
    else:
        count = db.session.scalar(_fts_count_statement(), params)
    return count <= SEARCH_FTS_MAX_MATCHES


# What the API renders of a channel (``core.serializers.channel_to_api`` reads these names): its
# reads select these columns and render the rows, without loading ORM objects and the joined
# integration, email domain and phone number that the console and the rules need.
API_COLUMNS = tuple(
    Channel.__table__.c[Channel.__mapper__.attrs[name].columns[0].key].label(name)
    for name in (
        "id",
        "tenant_id",
        "name",
        "channel_type",
        "integration_id",
        "send_from_email",
        "email_domain_id",
        "send_from_phone_number",
        "phone_number_id",
        "status",
        "is_default",
        "metadata_",
        "created_at",
        "updated_at",
    )
)


@cache
def _channel_row_statement():
    table = Channel.__table__
    return select(*API_COLUMNS).where(
        table.c.id == bindparam("channel_id"), table.c.tenant_id == bindparam("tenant_id")
    )


def channel_row(tenant_id: str, channel_id: object):
    """The tenant's channel ``channel_id`` as a row of ``API_COLUMNS`` (what the API renders),
    or NotFound as ``get_for_tenant`` answers it (malformed, unknown, other tenant's id alike).
    One prebuilt statement (its compiled form is cached), run alone: no transaction around it
    (``core.database.read_alone``)."""
    clean = lookup_id(channel_id)
    row = None
    if clean is not None:
        rows = read_alone(_channel_row_statement(), {"channel_id": clean, "tenant_id": tenant_id})
        row = rows[0] if rows else None
    if row is None:
        raise NotFound(f"{Channel.LABEL} not found.")
    return row


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
    key = name_key(needle)
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


@cache
def _api_page_statement(
    channel_type: bool, status: bool, is_default: bool | None, search: str | None, after: bool
):
    """The API list's page query for one combination of filters, built once with bound
    parameters (``channel_list_query`` builds the same conditions anew on every call, the
    statement's cache key walked each time): only the values change per request.

    ``search``: None, "trigram" (SQLite: the rows the FTS5 table names, sorted), "walk" (the
    tenant's channels newest first, ``name_key`` tested on each) or "index_walk" (SQLite: the
    same walk over ``ix_channels_tenant_created_name``'s entries, then the page's rows)."""
    table = Channel.__table__
    if search == "index_walk":
        return _index_walk_statement(channel_type, status, is_default, after)
    if search == "trigram":  # as in channel_list_query: the rows the FTS5 table names, sorted
        query = select(*API_COLUMNS).where(
            text("+channels.tenant_id = :tenant_id"),
            text(
                f"channels.rowid IN (SELECT rowid FROM {SEARCH_FTS_TABLE} "
                f"WHERE {SEARCH_FTS_TABLE} MATCH :search_phrase)"
            ),
        )
    else:
        query = select(*API_COLUMNS).where(table.c.tenant_id == bindparam("tenant_id"))
    query = query.where(
        *_page_filters(table, CHANNEL_IS_DEFAULT, channel_type, status, is_default, after)
    )
    if search:
        query = query.where(table.c.name_key.like(bindparam("pattern"), escape="\\"))
    return query.order_by(table.c.created_at.desc(), table.c.id.desc()).limit(
        bindparam("page_rows", type_=Integer)
    )


def _page_filters(
    table, is_default_true, channel_type: bool, status: bool, is_default: bool | None, after: bool
) -> list:
    """The API page's filter and cursor conditions on ``table`` (the channels or an alias of
    them), with bound parameters; ``is_default_true``: "is default" as the partial index states
    it, on that table."""
    conditions = []
    if channel_type:
        conditions.append(table.c.channel_type == bindparam("channel_type"))
    if status:
        conditions.append(table.c.status == bindparam("status"))
    if is_default is not None:
        conditions.append(is_default_true if is_default else table.c.is_default.is_(False))
    if after:
        when = bindparam("after_at", type_=table.c.created_at.type)
        conditions.append(
            or_(
                table.c.created_at < when,
                and_(table.c.created_at == when, table.c.id < bindparam("after_id")),
            )
        )
    return conditions


def _index_walk_statement(channel_type: bool, status: bool, is_default: bool | None, after: bool):
    """SQLite: the "walk" page in two steps. The inner query walks the tenant's entries of
    ``ix_channels_tenant_created_name`` (tenant, created_at, id, name_key) newest first and
    tests the name on the entry itself (covering: no row read for the entries it skips), keeping
    the first ``page_rows`` rowids that pass every condition; the outer query reads those rows
    and orders them. Same conditions, order and limit as the one-step walk, so the same page."""
    walked = Channel.__table__.alias("walked")
    ids = select(literal_column("walked.rowid")).where(
        walked.c.tenant_id == bindparam("tenant_id"),
        walked.c.name_key.like(bindparam("pattern"), escape="\\"),
    )
    # Type, status and default are not in the index: read for the entries whose name matched.
    # "Is default" as CHANNEL_IS_DEFAULT states it (the partial index's own WHERE), on the alias.
    ids = ids.where(
        *_page_filters(walked, text("walked.is_default"), channel_type, status, is_default, after)
    )
    page_rows = bindparam("page_rows", type_=Integer)
    ids = ids.order_by(walked.c.created_at.desc(), walked.c.id.desc()).limit(page_rows)
    table = Channel.__table__
    return (
        select(*API_COLUMNS)
        .where(literal_column("channels.rowid").in_(ids.scalar_subquery()))
        .order_by(table.c.created_at.desc(), table.c.id.desc())
        .limit(page_rows)
    )


def api_channel_page(
    tenant_id: str,
    limit: int,
    cursor: str | None = None,
    *,
    channel_type: str | None = None,
    status: str | None = None,
    is_default: bool | None = None,
    q: str | None = None,
) -> tuple[list, str | None]:
    """One page of the API list (``GET /api/channels``): the rows of ``API_COLUMNS`` that
    ``channel_list_query`` with the same filters selects, newest first, and the next cursor
    (as ``pagination.keyset_page``). One prebuilt statement per filter combination, run alone
    (``core.database.read_alone``): the page is one statement, its own snapshot."""
    params: dict = {"tenant_id": tenant_id, "page_rows": limit + 1}
    needle = (q or "").strip()[:SEARCH_MAX]
    search = None
    if needle:
        key = name_key(needle)
        if _use_sqlite_trigram_index(key, alone=True):
            search = "trigram"
        elif db.engine.dialect.name == "sqlite":
            search = "index_walk"
        else:
            search = "walk"
        params["pattern"] = f"%{_escape_like(key)}%"
        if search == "trigram":
            params["search_phrase"] = _fts_phrase(key)
    if channel_type:
        params["channel_type"] = channel_type
    if status:
        params["status"] = status
    if cursor:
        params["after_at"], params["after_id"] = decode_cursor(cursor)
    statement = _api_page_statement(
        bool(channel_type), bool(status), is_default, search, bool(cursor)
    )
    rows = read_alone(statement, params)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id)
    return rows, next_cursor


# --- the rows the channel rules read ----------------------------------------------------------


@dataclass(frozen=True)
class ChannelRefs:
    """Every row the channel rules read, fetched by ``load_channel_refs`` in one statement."""

    name_taken: bool = False
    default_id: str | None = None  # the tenant's default channel of ``default_type``
    # Has the tenant an enabled webhook endpoint? When not, the channel's events need no
    # delivery and the outbox does not read the endpoints (``events.no_endpoints``).
    has_endpoints: bool = True
    integration: Integration | None = None
    email_domain: EmailDomain | None = None
    phone_number: PhoneNumber | None = None

    @property
    def type_has_default(self) -> bool:
        return self.default_id is not None


def _of_tenant(model, id_param: str):
    """Join condition: the tenant's row of ``model`` with the id in parameter ``id_param``."""
    return and_(model.tenant_id == Tenant.id, model.id == bindparam(id_param))


# The columns of a referenced row that the channel rules and the channel service read: the rest
# (credentials, the DNS re-check's bookkeeping and per-record details, ...) is not loaded, so
# that a create or a refused one does not pay for decoding it.
REFERENCE_COLUMNS = (
    load_only(Integration.id, Integration.tenant_id, Integration.channel_type, Integration.status),
    load_only(EmailDomain.id, EmailDomain.tenant_id, EmailDomain.domain, EmailDomain.status),
    load_only(
        PhoneNumber.id,
        PhoneNumber.tenant_id,
        PhoneNumber.phone_number,
        PhoneNumber.integration_id,
        PhoneNumber.capabilities,
        PhoneNumber.status,
        PhoneNumber.created_at,
    ),
)


def _checks():
    """The name, default and endpoints columns of the rules' query, on bind parameters."""
    tenant_id = bindparam("tenant_id")
    name_taken = (
        select(Channel.id)
        .where(
            Channel.tenant_id == tenant_id,
            Channel.name_key == bindparam("name_key"),
            Channel.id != bindparam("exclude_id"),
        )
        .exists()
    )
    default_id = (
        select(Channel.id)
        .where(
            Channel.tenant_id == tenant_id,
            Channel.channel_type == bindparam("default_type"),
            CHANNEL_IS_DEFAULT,
        )
        .limit(1)
        .scalar_subquery()
    )
    return (
        name_taken.label("name_taken"),
        default_id.label("default_id"),
        events.enabled_endpoints_exist(tenant_id).label("has_endpoints"),
    )


@cache
def _channel_refs_statement():
    """One SELECT anchored on the tenant's row: the name check as an EXISTS column, the current
    default's id (at most one row: the partial unique index) as a scalar subquery, whether the
    tenant has an enabled webhook endpoint (EXISTS: the events of the write need deliveries), the
    integration, email domain and phone number outer-joined (NULL, so None, when the id is
    unknown or another tenant's). Built once: its compiled form is cached, only values change.
    A NULL parameter matches nothing, so an unneeded part costs an index probe and no row.

    It does not take the tenant lock itself: on PostgreSQL a ``FOR UPDATE`` that waits re-reads
    only the locked row, while the EXISTS checks keep the snapshot taken before the wait, so a
    name or default committed meanwhile would go unseen. The lock is its own statement, first
    (``services.channels.lock_tenant``); this one then starts with a fresh snapshot.
    """
    return (
        select(*_checks(), Integration, EmailDomain, PhoneNumber)
        .select_from(Tenant)
        .options(*REFERENCE_COLUMNS)
        .outerjoin(Integration, _of_tenant(Integration, "integration_id"))
        .outerjoin(EmailDomain, _of_tenant(EmailDomain, "email_domain_id"))
        .outerjoin(PhoneNumber, _of_tenant(PhoneNumber, "phone_number_id"))
        .where(Tenant.id == bindparam("tenant_id"))
    )


# A create's references as plain rows (``load_channel_ref_rows``): the columns the rules and
# the channel service read (``REFERENCE_COLUMNS``), as named tuples with the models' names.
IntegrationRef = namedtuple("IntegrationRef", "id tenant_id channel_type status")
EmailDomainRef = namedtuple("EmailDomainRef", "id tenant_id domain status")
PhoneNumberRef = namedtuple(
    "PhoneNumberRef", "id tenant_id phone_number integration_id capabilities status created_at"
)
_REF_ROWS = (
    (Integration, IntegrationRef),
    (EmailDomain, EmailDomainRef),
    (PhoneNumber, PhoneNumberRef),
)


@cache
def _channel_ref_rows_statement():
    """``_channel_refs_statement`` in Core: the same joins and checks, the referenced rows'
    columns selected by name (no ORM entity loading, no identity map)."""
    columns = [
        model.__table__.c[field].label(f"{model.__tablename__}__{field}")
        for model, ref in _REF_ROWS
        for field in ref._fields
    ]
    integrations, domains, numbers = (model.__table__ for model, _ in _REF_ROWS)
    tenants = Tenant.__table__
    return (
        select(*_checks(), *columns)
        .select_from(tenants)
        .outerjoin(integrations, _of_tenant_table(integrations, tenants, "integration_id"))
        .outerjoin(domains, _of_tenant_table(domains, tenants, "email_domain_id"))
        .outerjoin(numbers, _of_tenant_table(numbers, tenants, "phone_number_id"))
        .where(tenants.c.id == bindparam("tenant_id"))
    )


def _of_tenant_table(table, tenants, id_param: str):
    return and_(table.c.tenant_id == tenants.c.id, table.c.id == bindparam(id_param))


def _refs_params(
    tenant_id, name, exclude_id, integration_id, email_domain_id, phone_number_id, default_type
) -> dict | None:
    """The rules' query's parameters, or None when nothing is asked."""
    params = {
        "tenant_id": tenant_id,
        "name_key": name_key(name) if name is not None else None,
        "exclude_id": exclude_id or "",
        "default_type": default_type,
        "integration_id": lookup_id(integration_id),
        "email_domain_id": lookup_id(email_domain_id),
        "phone_number_id": lookup_id(phone_number_id),
    }
    asked = any(params[k] is not None for k in params if k not in ("tenant_id", "exclude_id"))
    return params if asked else None


def load_channel_refs(
    tenant_id: str,
    *,
    name: str | None = None,
    exclude_id: str | None = None,
    integration_id: str | None = None,
    email_domain_id: str | None = None,
    phone_number_id: str | None = None,
    default_type: str | None = None,
) -> ChannelRefs:
    """The tenant's rows a channel refers to, and the name and default checks, in one query.

    ``name``: is it taken by another channel (``exclude_id``: the channel being changed)?
    ``default_type``: which channel is the tenant's default of that type (None: none)? Ids are
    the caller's:
    another tenant's id is the same as an unknown one. Nothing asked: no query at all.
    The referenced rows come as ORM objects (a change assigns them to the channel).
    """
    params = _refs_params(
        tenant_id, name, exclude_id, integration_id, email_domain_id, phone_number_id, default_type
    )
    if params is None:
        return ChannelRefs()
    row = db.session.execute(_channel_refs_statement(), params).first()
    if row is None:  # no such tenant: nothing of it exists
        return ChannelRefs()
    return ChannelRefs(
        name_taken=bool(row.name_taken),
        default_id=row.default_id,
        has_endpoints=bool(row.has_endpoints),
        integration=row.Integration,
        email_domain=row.EmailDomain,
        phone_number=row.PhoneNumber,
    )


def load_channel_ref_rows(
    tenant_id: str,
    *,
    name: str | None = None,
    exclude_id: str | None = None,
    integration_id: str | None = None,
    email_domain_id: str | None = None,
    phone_number_id: str | None = None,
    default_type: str | None = None,
) -> ChannelRefs:
    """``load_channel_refs`` for a new channel (``services.channels.create_channel``): the same
    query and answers, the referenced rows as named tuples of the columns the rules read
    (``IntegrationRef``, ``EmailDomainRef``, ``PhoneNumberRef``) instead of ORM objects. A
    create only reads them and writes their ids: loading entities into the identity map cost
    about three times the statement itself."""
    params = _refs_params(
        tenant_id, name, exclude_id, integration_id, email_domain_id, phone_number_id, default_type
    )
    if params is None:
        return ChannelRefs()
    row = db.session.connection().execute(_channel_ref_rows_statement(), params).first()
    if row is None:  # no such tenant: nothing of it exists
        return ChannelRefs()
    values = row._mapping
    found = []
    for model, ref in _REF_ROWS:
        prefix = model.__tablename__ + "__"
        found.append(
            None
            if values[prefix + "id"] is None
            else ref._make(values[prefix + field] for field in ref._fields)
        )
    return ChannelRefs(bool(row.name_taken), row.default_id, bool(row.has_endpoints), *found)


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
