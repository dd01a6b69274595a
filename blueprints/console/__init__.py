"""The admin console: server-rendered pages enhanced with htmx."""

from flask import Blueprint

bp = Blueprint("console", __name__)

from blueprints.console import pages  # noqa: E402,F401
