"""Shared core of Channels: models, channel rules and the services every blueprint calls."""
