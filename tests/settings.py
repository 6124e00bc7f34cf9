"""Test settings: the project's settings read from a fixed environment, never from `.env`.

Unit tests talk to moto's in-process mock (`mock_aws`), so no real endpoint or credentials
may leak in from the developer's shell.
"""

import os

for name in ("DYNAMODB_ENDPOINT_URL", "REDIS_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "DEBUG"):
    os.environ.pop(name, None)
os.environ.update(
    ENV_FILE=os.devnull,
    SECRET_KEY="tests-only-secret-key-0123456789abcdef",
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_REGION="us-east-1",
    DYNAMODB_TABLE_NAME="tests_connections",
    DATABASE_URL="sqlite://:memory:",
)

from project.settings import *  # noqa: E402,F403
