"""Issue 11's per-service options: cosmos.healthcheck and cosmos.healthcheck-interval."""

from __future__ import annotations

import pytest

from cosmos_core import options as opts
from cosmos_core.errors import ValidationError
from cosmos_core.options_rollout import check_interval, check_path


def test_declared_once_for_labels_and_payloads() -> None:
    assert opts.SERVICE_OPTIONS["healthcheck"].label_name == "cosmos.healthcheck"
    assert opts.SERVICE_OPTIONS["healthcheck_interval"].label_name == "cosmos.healthcheck-interval"
    found = opts.from_labels({"cosmos.healthcheck": "/healthz", "cosmos.healthcheck-interval": "0.5"},
                             opts.SERVICE_OPTIONS)
    assert dict(found) == {"healthcheck": "/healthz", "healthcheck_interval": 0.5}
    assert dict(opts.from_payload({"healthcheckInterval": 2}, opts.SERVICE_OPTIONS, "c[0]")) == {"healthcheck_interval": 2.0}


@pytest.mark.parametrize("bad", ["healthz", "/a b", "/a'b", "/x\n    server evil 1.2.3.4:80", "", 5])
def test_a_bad_path_is_refused_naming_the_field(bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        check_path(bad, "cosmos.healthcheck")
    assert info.value.field == "cosmos.healthcheck"


@pytest.mark.parametrize("bad", ["0", "-1", "nan", "inf", "3601", "soon", True])
def test_a_bad_interval_is_refused(bad: object) -> None:
    with pytest.raises(ValidationError):
        check_interval(bad, "cosmos.healthcheck-interval")
