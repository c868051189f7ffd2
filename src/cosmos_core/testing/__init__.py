"""Test helpers for plugin authors (they need pytest; cosmos itself never imports them).

* :mod:`cosmos_core.testing.store_contract` - the behaviour every state store must have;
* :mod:`cosmos_core.testing.pipeline` - run a payload through the pipeline with your plugin.
"""
