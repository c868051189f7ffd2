"""Cosmos certificate resolver ``acme`` (ACME HTTP-01 through HAProxy, installed without a reload)."""
