"""Cosmos as a network service: the original Cosmonaut -> Cosmos split.

* :mod:`cosmos_core.server.api` - the HTTP contract without any web framework
  (``POST /generate``, ``GET /healthz``, ``GET /status``, bearer auth, limits):
  both front ends below call it, so they answer alike.
* :mod:`cosmos_core.server.app` - the Starlette ASGI app behind ``cosmos serve``.
* :mod:`cosmos_core.server.lambda_handler` - ``handler(event, context)`` for
  AWS Lambda behind API Gateway (REST v1 and HTTP API v2 proxy events).

Nothing here is imported by ``cosmos --help``; starlette is imported only by
:mod:`~cosmos_core.server.app`.
"""
