"""Benchmarks: the app under gunicorn and wrk, every figure a ratio to a bare-Flask baseline."""
