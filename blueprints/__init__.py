"""Flask blueprints: ``api`` (JSON, /api), ``console`` (server-rendered pages) and ``ops``
(health checks and metrics)."""
