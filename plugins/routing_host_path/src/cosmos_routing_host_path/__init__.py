"""Cosmos routing modes: ``host`` and ``path``."""
