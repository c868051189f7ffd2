"""Test helpers for plugin authors (they need pytest; cosmos itself never imports them).

* :mod:`cosmos_core.testing.store_contract` - the behaviour every state store must have.
"""
