"""The embedded defaults, registered through the same hooks as any plugin.

* ``sqlite_store``: the ``sqlite`` state store;
* ``haproxy_emitter``: the ``haproxy`` config emitter;
* ``payload_source``: the ``payload`` event source (a request from a file or stdin);
* ``reloaders``: the ``none`` reloader.
"""
