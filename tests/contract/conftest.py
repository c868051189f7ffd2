"""Contract runs: moto reuses the plugin's unit fixtures; dynalite the integration session fixtures."""

from tests.integration.conftest import dynalite, dynalite_env  # noqa: F401  (shared session fixtures)
from tests.plugins.storage_dynamodb.conftest import aws_env, moto_env  # noqa: F401
