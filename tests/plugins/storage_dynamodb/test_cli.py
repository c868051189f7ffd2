"""The dynamodb store through the real ``cosmos`` executable: registration, lazy imports, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.net import free_port

COSMOS = str(Path(sys.executable).with_name("cosmos"))
SEED = str(Path(__file__).parents[3] / "examples" / "seed-payload.json")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([COSMOS, *args], capture_output=True, text=True, env=env, timeout=60, check=False)


@pytest.fixture
def env(aws_env: None) -> dict[str, str]:
    """The process environment with the aws_env fixture applied and no COSMOS_* settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith("COSMOS_")} | {"COSMOS_LOG_LEVEL": "error"}


def test_the_scheme_is_registered_and_boto3_stays_unimported(env: dict[str, str]) -> None:
    listing = run("plugins", env=env)
    assert listing.returncode == 0 and "state_stores: dynamodb" in listing.stdout
    code = "import sys, cosmos_storage_dynamodb.plugin as p; p.cosmos_state_stores(); print('boto3' in sys.modules)"
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "False"


def test_unreachable_endpoint_exits_1_with_one_line(env: dict[str, str]) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    result = run("generate", "--store", f"dynamodb://cosmos-cli?endpoint={endpoint}&max_attempts=2", SEED, env=env)
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("cosmos: error: store dynamodb table 'cosmos-cli' at " + endpoint)
    assert "check AWS_ENDPOINT_URL_DYNAMODB" in lines[0]


def test_missing_credentials_exits_1_with_one_line(env: dict[str, str]) -> None:
    del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    env["AWS_ENDPOINT_URL_DYNAMODB"] = f"http://127.0.0.1:{free_port()}"
    result = run("status", "--store", "dynamodb://cosmos-cli", "--table", "astro", env=env)
    assert result.returncode == 1
    expected = (
        f"cosmos: error: store dynamodb table 'cosmos-cli' at {env['AWS_ENDPOINT_URL_DYNAMODB']}: "
        "no AWS credentials; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
    )
    assert result.stderr.strip().splitlines() == [expected]


def test_bad_store_url_exits_2_naming_the_field(env: dict[str, str]) -> None:
    result = run("generate", "--store", "dynamodb://x", SEED, env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("cosmos: error: store: DynamoDB table name must be 3-255 characters")
