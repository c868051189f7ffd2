"""Cosmos event source ``docker``: the labelled containers of a Docker host."""
