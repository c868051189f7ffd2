"""Reusable infrastructure for the integration tests.

- :mod:`tests.support.images`: FROM-scratch HAProxy and httpd test images,
  container helpers and an HTTP polling helper.
- :mod:`tests.support.dynalite`: a throw-away dynalite (DynamoDB-protocol) server.

Heavy imports (``docker``, ``boto3``) happen inside functions so that importing
this package costs nothing.
"""
