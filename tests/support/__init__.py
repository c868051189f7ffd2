"""Reusable infrastructure for the integration tests.

- :mod:`tests.support.images`: FROM-scratch HAProxy and httpd test images,
  container helpers and an HTTP polling helper.
- :mod:`tests.support.dynalite`: a throw-away dynalite (DynamoDB-protocol) server.
- :mod:`tests.support.haproxy`: the host's HAProxy on loopback ports running a generated
  config, and loopback HTTP backends.
- :mod:`tests.support.net`: free loopback ports, waiting until a port accepts or a
  condition holds, stopping a child process (benchmarks import these too).

Heavy imports (``docker``, ``boto3``) happen inside functions so that importing
this package costs nothing.
"""
