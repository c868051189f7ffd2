"""Cosmos state store ``dynamodb://`` (see the README next to pyproject.toml)."""
