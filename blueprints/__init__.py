"""Flask blueprints: ``api`` (JSON, /api) and ``console`` (server-rendered pages)."""
