"""Read queries over channels shared by the API list and the console table."""

from __future__ import annotations

from sqlalchemy import Select, select

from core.models import Channel

SEARCH_MAX = 100


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def channel_list_query(
    tenant_id: str,
    channel_type: str | None = None,
    status: str | None = None,
    is_default: bool | None = None,
    q: str | None = None,
) -> Select:
    """The tenant's channels filtered by type, status, default flag and name substring."""
    query = select(Channel).where(Channel.tenant_id == tenant_id)
    if channel_type:
        query = query.where(Channel.channel_type == channel_type)
    if status:
        query = query.where(Channel.status == status)
    if is_default is not None:
        query = query.where(Channel.is_default.is_(is_default))
    needle = (q or "").strip()[:SEARCH_MAX]
    if needle:
        query = query.where(Channel.name_key.like(f"%{_escape_like(needle.casefold())}%", escape="\\"))
    return query
