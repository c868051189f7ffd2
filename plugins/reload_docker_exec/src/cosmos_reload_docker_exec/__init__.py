"""Cosmos reloader ``docker-exec``: validate and reload HAProxy inside its container."""
