"""Scrape a Prometheus endpoint with a real HTTP client and parse it with prometheus_client's parser."""

from __future__ import annotations

from collections.abc import Mapping

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """``{(sample name, sorted labels): value}`` of a Prometheus text exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(url: str, headers: Mapping[str, str] | None = None) -> Samples:
    """GET ``url`` (a ``/metrics`` endpoint); it must answer 200 in the text format."""
    from tests.support.images import http_get

    response = http_get(url, headers)
    assert response.status == 200, response
    assert response.headers["Content-Type"].startswith("text/plain"), response.headers["Content-Type"]
    return parse(response.body)
