"""The ``remote`` config emitter: the original Cosmonaut -> Cosmos split.

The agent builds the payload from Docker state, POSTs it to a Cosmos server
(``cosmos serve`` or the Lambda handler) and hands the config it gets back to
the reloader.  Only the standard library is used (``urllib``).
"""
