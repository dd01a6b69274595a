"""Console pages (placeholder until the console issue lands)."""

from blueprints.console import bp


@bp.get("/")
def index():
    """Home."""
    return "Channels"
