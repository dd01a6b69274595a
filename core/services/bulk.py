"""Bulk creates (DESIGN §10): up to ``MAX_ITEMS`` channels or phone numbers in one call.

Every item goes through the rules of a single create (``rules.check_channel``,
``rules.check_phone_number``), which read their rows through a ``BatchRefs``: the integrations,
email domains and numbers the batch names, the names it would take and the tenant's defaults are
read in a handful of set-based queries for the whole batch, not one query per item. Then each
item is checked against the items before it (applied in order, as single creates would be):

- a name repeated within the batch (case-insensitively) is refused on the later item;
- two items of one type with ``is_default: true`` are refused (the later one);
- the same phone number twice in a phone number batch is refused (the later one).

Two channels may send from the same address or number, as with single creates.

Defaults follow the single-create rules, in order: an item without ``is_default`` becomes the
default of its type when the tenant (with the batch's earlier items) has none; an explicit
``true`` takes the default over (the tenant's previous default is cleared, audited and
announced in ``channel.default_changed``).

``atomic`` (the default): any refused item refuses the batch (``BatchRefused``, a 422 whose
``fields`` are keyed ``channels.<index>.<field>``), nothing is written. Otherwise the valid items
are written and each item gets its own outcome. The channels, their audit events and their
webhook events are each written by ``core.database.insert_rows`` (SQLite: multi-row statements
of plain values; PostgreSQL: the channels as arrays, the rest an executemany), all in the
caller's transaction, with the garbage collector paused for the batch (``collector_paused``).
"""

from __future__ import annotations

import gc
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import ARRAY, String, bindparam, func, literal, select, true, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from core import events, rules
from core.database import insert_rows
from core.db_types import new_id, new_ids, utcnow
from core.errors import Conflict, FieldErrors, ValidationFailed
from core.extensions import db
from core.models import CHANNEL_IS_DEFAULT, Channel, EmailDomain, Integration, PhoneNumber
from core.rules.batches import BATCH_MAX
from core.rules.numbers import number_in_use
from core.serializers import channel_to_api, phone_number_to_api
from core.services import audit
from core.services import channels as channel_service
from core.services.audit import Actor
from core.services.channel_queries import ChannelRefs, load_channel_refs
from core.tenancy import lookup_id

MAX_ITEMS = BATCH_MAX
NOT_AN_OBJECT = "Must be a JSON object."


class BatchRefused(ValidationFailed):
    """An atomic batch with at least one refused item: nothing was written."""


@dataclass
class ItemResult:
    """One item's outcome: ``channel``/``phone_number`` when accepted, else its ``errors``."""

    index: int
    errors: dict[str, list[str]] | None = None
    message: str | None = None
    draft: object = None
    channel: Channel | None = None
    phone_number: PhoneNumber | None = None
    rendered: dict | None = None  # the API object, rendered once for the event and the response

    @property
    def ok(self) -> bool:
        return self.errors is None


@contextmanager
def collector_paused():
    """Python's cyclic garbage collector paused for one batch (checked, built and written), and
    resumed after it, error or not (left alone if it was already off).

    A batch keeps every item's objects (the body's dicts, the drafts, the rows, the audit and
    event rows) alive until it ends, tens of thousands of them for 1,000 items: the young
    collections that a batch's allocations trigger kept walking them, promoted them, and now and
    then the promotions set off a full collection of the whole process (~190,000 objects: 340 ms
    on a loaded machine), which a single create almost never meets.
    Paused, those objects are freed by their reference counts when the batch ends, as they would
    be anyway; what the pause can leave behind is the cyclic garbage made during one batch
    (bounded by the batch's size), collected once the collector runs again. Paused for the whole
    process, so for a request of another thread meanwhile too: for the batch's duration only.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _id_set(items: list, key: str) -> set[str]:
    return {lookup_id(item.get(key)) for item in items if isinstance(item, dict)} - {None}


def _key_of(name: object) -> str | None:
    """The name key ``rules.clean_name`` would lead to (read ahead; ``load`` is exact)."""
    if not isinstance(name, str):
        return None
    return rules.name_key(unicodedata.normalize("NFC", name.strip()))


class BatchRefs:
    """The rows a batch of channels refers to, read once; ``load`` answers ``check_channel``
    exactly as ``load_channel_refs`` would, from them."""

    def __init__(self, tenant_id: str, items: list, numbers: dict[str, PhoneNumber] | None = None):
        self.tenant_id = tenant_id
        self.integrations = _by_id(Integration, tenant_id, _id_set(items, "integration_id"))
        self.domains = _by_id(EmailDomain, tenant_id, _id_set(items, "email_domain_id"))
        self.numbers = _by_id(PhoneNumber, tenant_id, _id_set(items, "phone_number_id"))
        self.numbers.update(numbers or {})
        keys = {_key_of(item.get("name")) for item in items if isinstance(item, dict)} - {None}
        self.checked_keys: set[str] = set(keys)
        self.taken: set[str] = set(
            _probe(
                Channel.name_key,
                Channel.name_key,
                keys,
                Channel.tenant_id == tenant_id,
                unique_after=(Channel.tenant_id, tenant_id),
            )
        )
        self.defaults: dict[str, str] = {
            row.channel_type: row.id
            for row in db.session.execute(
                select(Channel.channel_type, Channel.id).where(
                    Channel.tenant_id == tenant_id, CHANNEL_IS_DEFAULT
                )
            )
        }

    def name_taken(self, name: str) -> bool:
        key = rules.name_key(name)
        if key not in self.checked_keys:  # not read ahead (rare): asked alone
            self.checked_keys.add(key)
            if load_channel_refs(self.tenant_id, name=name).name_taken:
                self.taken.add(key)
        return key in self.taken

    def load(
        self,
        tenant_id: str,
        *,
        name: str | None = None,
        exclude_id: str | None = None,  # noqa: ARG002 - creates only: nothing to exclude
        integration_id: str | None = None,
        email_domain_id: str | None = None,
        phone_number_id: str | None = None,
        default_type: str | None = None,
    ) -> ChannelRefs:
        """``load_channel_refs``'s answer, from the rows read for the batch."""
        assert tenant_id == self.tenant_id
        return ChannelRefs(
            name_taken=self.name_taken(name) if name is not None else False,
            default_id=self.defaults.get(default_type) if default_type else None,
            integration=self.integrations.get(lookup_id(integration_id)),
            email_domain=self.domains.get(lookup_id(email_domain_id)),
            phone_number=self.numbers.get(lookup_id(phone_number_id)),
        )


def _chunks(values: list, size: int):
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _probe(what, key, values: set[str], *where, unique_after=None) -> list:
    """``what`` (a model or a column) of the rows whose ``key`` is one of ``values`` and that
    meet ``where``: one query per 500 values, each value one probe of ``key``'s unique index.

    On PostgreSQL the values are an array joined LATERAL to a one-row subquery, which can only
    be planned as a nested loop of index probes. The plain ``key IN (...)`` was planned from
    the tables' statistics: on a table that grew since it was last analyzed (a 50,000-row
    import, autovacuum late or off) the planner took the tenant's few rows for a cheaper walk
    than 500 probes and read every channel of the tenant for every chunk (bench/FINDINGS.md
    §12). SQLite probes the index for ``IN`` whatever its statistics.

    ``unique_after``: ``(column, value)`` when the unique index to probe is ``(column, key)``
    (the tenant's names: ``(tenant_id, name_key)``) and ``where`` says ``column == value``. On
    PostgreSQL each probe then also says ``(column, key) >= (value, asked)``, true of every row
    it can find, which only that index serves as a bound: a table never analyzed (or small
    when last analyzed) otherwise let the planner cost the tenant-first indexes the same, and
    it walked the tenant's rows once per value through ``ix_channels_tenant_type_created``
    (200–600 ms a probe at 1,000–2,000 channels, bench/FINDINGS.md §14)."""
    found: list = []
    postgres = db.engine.dialect.name == "postgresql"
    for chunk in _chunks(sorted(values), 500):
        if not postgres:
            found.extend(db.session.scalars(select(what).where(key.in_(chunk), *where)))
            continue
        asked = (
            func.unnest(bindparam("values", chunk, type_=ARRAY(String)))
            .table_valued("value")
            .render_derived(name="asked")
        )
        bound = ()
        if unique_after is not None:
            column, value = unique_after
            bound = (tuple_(column, key) >= tuple_(literal(value, column.type), asked.c.value),)
        hit = select(what).where(key == asked.c.value, *where, *bound).limit(1).lateral("hit")
        target = aliased(what, hit) if isinstance(what, type) else hit.c[0]
        found.extend(db.session.scalars(select(target).select_from(asked.join(hit, true()))))
    return found


def _by_id(model, tenant_id: str, ids: set[str]) -> dict:
    """The tenant's rows of ``model`` among ``ids``, by id (one query per 500 ids)."""
    return {row.id: row for row in _probe(model, model.id, ids, model.tenant_id == tenant_id)}


# --- channels ---------------------------------------------------------------------------------


class NewChannel:
    """A channel of a batch, as a plain object with the columns' attributes: it is written by
    one executemany and rendered, never loaded into the session, so the ORM's instrumentation
    (a third of a batch's cost) has nothing to do."""

    def __init__(self, **values):
        self.id = None
        self.created_at = None
        self.updated_at = None
        self.__dict__.update(values)


@dataclass
class _ChannelBatch:
    """The accepted items of a channel batch and the defaults they move."""

    results: list[ItemResult]
    # type -> the batch's item that ends up the default of the type
    new_defaults: dict[str, ItemResult] = field(default_factory=dict)


def _check_channels(tenant_id: str, items: list, refs: BatchRefs, atomic: bool) -> _ChannelBatch:
    """Every item by the single-create rules, then against the earlier items of the batch."""
    results = []
    claimed: dict[str, int] = {}  # name key -> index of the item that takes it
    explicit_default: dict[str, int] = {}  # type -> index of the item that asked to be default
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            results.append(
                ItemResult(index, {"": [NOT_AN_OBJECT]}, "The channel could not be created.")
            )
            continue
        try:
            draft = rules.check_channel(tenant_id, item, load_refs=refs.load)
        except ValidationFailed as exc:
            results.append(ItemResult(index, exc.fields, exc.message))
            continue
        errors = FieldErrors()
        key = rules.name_key(draft.name)
        if key in claimed:
            errors.add("name", f"Repeated in this batch: item {claimed[key]} has this name.")
        if draft.is_default and draft.channel_type in explicit_default:
            errors.add(
                "is_default",
                f"Only one {draft.channel_type} channel of a batch can be the default: "
                f"item {explicit_default[draft.channel_type]} is.",
            )
        if errors:
            results.append(ItemResult(index, errors.as_dict(), "The channel could not be created."))
            continue
        claimed[key] = index
        if draft.is_default:
            explicit_default[draft.channel_type] = index
        results.append(ItemResult(index, draft=draft))
    batch = _ChannelBatch(results)
    if atomic and any(not r.ok for r in results):
        return batch
    # The defaults, in order, as single creates would leave them.
    for result in results:
        if not result.ok:
            continue
        draft = result.draft
        kind = draft.channel_type
        is_default = draft.is_default
        if is_default is None:
            is_default = refs.defaults.get(kind) is None and kind not in batch.new_defaults
        if is_default and kind in batch.new_defaults:
            batch.new_defaults[kind].channel.is_default = False  # an earlier item handed over
        result.channel = channel_service.new_channel(tenant_id, draft, is_default, make=NewChannel)
        if is_default:
            batch.new_defaults[kind] = result
    return batch


def refused(results: list[ItemResult], what: str, collection: str, total: int) -> BatchRefused:
    """The 422 of an atomic batch: every refused item's fields as ``<collection>.<index>.<f>``."""
    fields: dict[str, list[str]] = {}
    failed = [r for r in results if not r.ok]
    for result in failed:
        for name, messages in result.errors.items():
            path = f"{collection}.{result.index}" + (f".{name}" if name else "")
            fields[path] = list(messages)
    return BatchRefused(
        f"{len(failed)} of {total} {what} could not be created; nothing was saved.", fields
    )


def _write_channels(tenant_id: str, batch: _ChannelBatch, actor: Actor) -> list[dict]:
    """Insert the accepted channels, clear the defaults they take over; audit events and
    webhook events in bulk. Returns the audit events (already written)."""
    accepted = [r for r in batch.results if r.ok]
    now = utcnow()
    for result, channel_id in zip(accepted, new_ids(len(accepted)), strict=True):
        result.channel.id = channel_id
        result.channel.created_at = now
        result.channel.updated_at = None
    audited = []
    previous_defaults = {}
    refs_defaults = {
        kind: result.draft.current_default_id for kind, result in batch.new_defaults.items()
    }
    for kind, previous_id in refs_defaults.items():
        if previous_id is not None:
            previous, cleared = channel_service.clear_default(tenant_id, actor, previous_id)
            previous_defaults[kind] = previous
            audited.append(cleared)
    if not accepted:
        return audited
    channel_service.insert_channels([r.channel for r in accepted])
    created = audit.event(tenant_id, actor, "channel.create", "channel", None)  # each item's
    for result in accepted:
        channel = result.channel
        changes = audit.diff({}, channel_service.snapshot(channel))
        audited.append({**created, "resource_id": channel.id, "changes": changes})
        result.rendered = channel_to_api(channel)
    audit.write(*audited)
    events.emit_created(
        tenant_id, "channel.created", [(r.channel.id, r.rendered) for r in accepted]
    )
    for kind, result in batch.new_defaults.items():
        events.default_changed(
            tenant_id, kind, previous_defaults.get(kind), result.channel, "admin"
        )
    return audited


@collector_paused()
def create_channels(
    tenant_id: str, items: list, actor: Actor, *, atomic: bool = True, dry_run: bool = False
) -> list[ItemResult]:
    """Create a batch of channels (see the module doc); one ``ItemResult`` per item, in order.

    Atomic: raises ``BatchRefused`` when any item is refused, and writes nothing. ``dry_run``:
    every check, nothing written (the results' channels have no id)."""
    if not dry_run:
        channel_service.lock_tenant(tenant_id)
    refs = BatchRefs(tenant_id, items)
    batch = _check_channels(tenant_id, items, refs, atomic)
    if atomic and any(not r.ok for r in batch.results):
        raise refused(batch.results, "channels", "channels", len(items))
    if dry_run:
        for result in batch.results:
            if result.ok:
                result.rendered = channel_to_api(result.channel)
        return batch.results
    # the drafts read the tenant's current default with the other rows
    for kind, result in batch.new_defaults.items():
        result.draft.current_default_id = refs.defaults.get(kind)
    _write_channels(tenant_id, batch, actor)
    return batch.results


# --- phone numbers ----------------------------------------------------------------------------


class _NumberLookups:
    """``check_phone_number``'s reads for a batch: the integrations it names and the numbers
    already in use among the ones it adds, read once."""

    def __init__(self, tenant_id: str, items: list):
        self.integrations = _by_id(Integration, tenant_id, _id_set(items, "integration_id"))
        candidates = sorted(
            {
                item["phone_number"].strip()
                for item in items
                if isinstance(item, dict) and isinstance(item.get("phone_number"), str)
            }
        )
        self.checked = set(candidates)
        self.used: set[str] = set(
            _probe(
                PhoneNumber.phone_number,
                PhoneNumber.phone_number,
                set(candidates),
                PhoneNumber.status == "active",
            )
        )

    def in_use(self, number: str) -> bool:
        if number not in self.checked:  # typed nationally: asked alone
            self.checked.add(number)
            if number_in_use(number):
                self.used.add(number)
        return number in self.used

    def integration(self, integration_id) -> Integration | None:
        return self.integrations.get(lookup_id(integration_id))


def _free_name(refs: BatchRefs, claimed: set[str], base: str) -> str:
    """``SMS +14155550123``, or with a counter when a channel (or the batch) has that name."""
    name, counter = base, 2
    while rules.name_key(name) in claimed or refs.name_taken(name):
        name = f"{base} ({counter})"
        counter += 1
    claimed.add(rules.name_key(name))
    return name


@collector_paused()
def add_phone_numbers(
    tenant_id: str, items: list, actor: Actor, *, atomic: bool = True, dry_run: bool = False
) -> list[ItemResult]:
    """Add a batch of numbers, each with its SMS channel unless ``create_channel`` is false
    (see the module doc); one ``ItemResult`` per item, in order."""
    if not dry_run:
        channel_service.lock_tenant(tenant_id)
    lookups = _NumberLookups(tenant_id, items)
    results: list[ItemResult] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        message = "The phone number could not be added."
        if not isinstance(item, dict):
            results.append(ItemResult(index, {"": [NOT_AN_OBJECT]}, message))
            continue
        try:
            draft = rules.check_phone_number(
                tenant_id, item, in_use=lookups.in_use, find_integration=lookups.integration
            )
        except ValidationFailed as exc:
            results.append(ItemResult(index, exc.fields, exc.message))
            continue
        if draft.phone_number in seen:
            errors = {
                "phone_number": [
                    f"Repeated in this batch: item {seen[draft.phone_number]} has this number."
                ]
            }
            results.append(ItemResult(index, errors, message))
            continue
        seen[draft.phone_number] = index
        number = PhoneNumber(
            id=new_id(),
            tenant_id=tenant_id,
            phone_number=draft.phone_number,
            integration_id=draft.integration.id,
            capabilities=draft.capabilities,
            status="active",
            released_at=None,
        )
        results.append(ItemResult(index, draft=draft, phone_number=number))

    # Their SMS channels, through the channel batch (its rules and defaults).
    wanting = [
        r for r in results if r.ok and r.draft.create_channel and "sms" in r.draft.capabilities
    ]
    numbers = {r.phone_number.id: r.phone_number for r in wanting}
    bases = [{"name": f"SMS {r.phone_number.phone_number}"} for r in wanting]
    refs = BatchRefs(
        tenant_id,
        [{"integration_id": r.phone_number.integration_id} for r in wanting] + bases,
        numbers,
    )
    claimed: set[str] = set()
    channel_items = [
        {
            "name": _free_name(refs, claimed, base["name"]),
            "channel_type": "sms",
            "integration_id": r.phone_number.integration_id,
            "send_from_phone_number": r.phone_number.phone_number,
            "phone_number_id": r.phone_number.id,
        }
        for r, base in zip(wanting, bases, strict=True)
    ]
    batch = _check_channels(tenant_id, channel_items, refs, atomic=False)
    by_number = {}
    for result, channel_result in zip(wanting, batch.results, strict=True):
        if channel_result.ok:
            by_number[result.index] = channel_result
        else:  # the number's own channel was refused: so is the number (as a single add)
            result.errors = {f"channel.{k}": v for k, v in channel_result.errors.items()}
            result.message = "The phone number could not be added."
            batch.new_defaults = {
                k: v for k, v in batch.new_defaults.items() if v is not channel_result
            }
    if atomic and any(not r.ok for r in results):
        raise refused(results, "phone numbers", "phone_numbers", len(items))
    accepted = [r for r in results if r.ok]
    if dry_run:
        for result in accepted:
            channel_result = by_number.get(result.index)
            result.channel = channel_result.channel if channel_result else None
        return results

    now = utcnow()
    for result in accepted:
        result.phone_number.created_at = now
    if accepted:
        try:
            with db.session.begin_nested():
                insert_rows(
                    db.session.connection(),
                    PhoneNumber.__table__,
                    [_number_row(r.phone_number) for r in accepted],
                    arrays=False,
                )
        except IntegrityError as exc:
            # Numbers are unique platform-wide: another tenant took one a moment ago.
            raise Conflict(
                "A number of the batch was added by another request meanwhile; nothing was "
                "saved. Retry the batch."
            ) from exc
        created = audit.event(tenant_id, actor, "phone_number.create", "phone_number", None)
        audit.write(
            *[
                {
                    **created,
                    "resource_id": r.phone_number.id,
                    "changes": audit.diff(
                        {},
                        {
                            "phone_number": r.phone_number.phone_number,
                            "capabilities": r.phone_number.capabilities,
                        },
                    ),
                }
                for r in accepted
            ]
        )
    # Only the channels of numbers that were accepted (all, unless one's channel was refused).
    batch.results = [by_number[r.index] for r in accepted if r.index in by_number]
    for kind, result in list(batch.new_defaults.items()):
        result.draft.current_default_id = refs.defaults.get(kind)
    _write_channels(tenant_id, batch, actor)
    for result in accepted:
        channel_result = by_number.get(result.index)
        result.channel = channel_result.channel if channel_result else None
        result.rendered = phone_number_to_api(
            result.phone_number, result.channel.id if result.channel else None
        )
    events.emit_created(
        tenant_id, "phone_number.added", [(r.phone_number.id, r.rendered) for r in accepted]
    )
    return results


_NUMBER_COLUMNS = tuple(
    (attr.key, attr.columns[0].key) for attr in PhoneNumber.__mapper__.column_attrs
)


def _number_row(number: PhoneNumber) -> dict:
    return {column: getattr(number, attr) for attr, column in _NUMBER_COLUMNS}
