"""The app exactly as shipped, as gunicorn serves it for the benchmark.

The only change is configuration: the per-key API rate limit (Flask-Limiter) is switched off
(``RATELIMIT_ENABLED=False``), since a load generator on one key would otherwise measure 429s.
Everything else (DATABASE_URL, SECRET_KEY, CREDENTIALS_KEY, CHANNELS_ENV) comes from the
environment as in production.
"""

from app import create_app

app = create_app({"RATELIMIT_ENABLED": False, "LOG_LEVEL": "WARNING"})
