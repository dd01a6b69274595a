"""Walk every GET route of the app (API and console) with real ids: for header and secret sweeps.

Routes are read from ``app.url_map``, so a page added later is swept without editing the tests.
Path arguments are filled from ``ids`` by name; an argument nobody knows gets a made-up UUID
(the route then answers 404, whose headers and body are swept all the same). An argument that
takes one of a few words (``<any(channels, phone_numbers):kind>``) is swept with each of them.
"""

from __future__ import annotations

import itertools
import uuid

from flask import Flask
from werkzeug.routing import AnyConverter


def get_urls(app: Flask, ids: dict[str, str], prefix: str | None = None) -> list[str]:
    """One URL per GET route (static files: the app's own CSS and JS), optionally under a prefix."""
    urls = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods:
            continue
        if rule.endpoint == "static":
            urls += ["/static/app.css", "/static/app.js"]
            continue
        choices = {}
        for arg in sorted(rule.arguments):
            converter = rule._converters.get(arg)
            if isinstance(converter, AnyConverter):
                choices[arg] = sorted(converter.items)
            else:
                choices[arg] = [ids.get(arg, str(uuid.uuid4()))]
        for combination in itertools.product(*choices.values()):
            url = rule.build(dict(zip(choices, combination, strict=True)), append_unknown=False)[1]
            if prefix is None or url.startswith(prefix):
                urls.append(url)
    return sorted(set(urls))


def is_api(url: str) -> bool:
    return url == "/api" or url.startswith("/api/")
