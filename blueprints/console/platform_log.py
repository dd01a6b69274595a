"""Console page for the platform log (/platform-log): support staff only.

What support staff do as themselves (core.services.platform_log): their sign-ins and other
authentication events, and the tenants they opened (with the reason) and whose access ran out.
Newest first, keyset pages both ways like the audit log; htmx swaps only the results. Operators
read the same with ``flask --app app platform-log``.
"""

from __future__ import annotations

from flask import current_app, request, url_for

from blueprints.console import bp
from blueprints.console.responses import render_page
from blueprints.console.support import requires_support
from core.extensions import db
from core.models import PlatformEvent
from core.pagination import keyset_window
from core.services import platform_log


@bp.get("/platform-log")
@requires_support
def platform_log_index():
    """The platform log, newest first, in keyset pages (the results alone for htmx)."""
    window = keyset_window(
        db.session,
        platform_log.events_query(),
        PlatformEvent,
        current_app.config["PAGE_SIZE"],
        after=request.args.get("cursor") or None,
        before=request.args.get("before") or None,
    )
    return render_page(
        "platform_log/index.html",
        "platform_log/_results.html",
        window=window,
        newer_url=url_for("console.platform_log_index", before=window.newer_cursor)
        if window.newer_cursor
        else None,
        older_url=url_for("console.platform_log_index", cursor=window.older_cursor)
        if window.older_cursor
        else None,
    )
