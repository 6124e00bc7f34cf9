"""The DynamoDB client and the one way the registry calls it.

`make_client` builds the shared, thread-safe boto3 client with bounded timeouts, retries and
connection pool (docs/registry.md, "DynamoDB access"). `Table.api_call` makes every call of
the registry: timed in metrics under its API name, its failures turned into
RegistryUnavailable with a reason an operator can act on.
"""

from dataclasses import dataclass

import boto3
from botocore import exceptions as botocore_exceptions
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from realtime import metrics
from realtime.registry.errors import RegistryUnavailable

__all__ = ["CALLER_DECIDES", "Table", "error_code", "make_client", "unavailable"]

# Errors that are answers, not failures: a condition that did not hold.
CALLER_DECIDES = frozenset({"ConditionalCheckFailedException", "TransactionCanceledException"})


def make_client(
    *,
    region: str,
    endpoint_url: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    connect_timeout: float = 1.0,
    read_timeout: float = 2.0,
    max_attempts: int = 2,
    max_connections: int = 16,
    validate_parameters: bool = False,
):
    """A thread-safe DynamoDB client with bounded timeouts, retries and connection pool.

    botocore's client-side parameter validation is off by default: it adds 10-15% to a
    PutItem's CPU and 15-60% to a 25-item batch's (`python -m bench.boto3_cost`), for
    requests this package builds and DynamoDB validates again anyway.
    """
    config = Config(
        region_name=region,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        max_pool_connections=max_connections,
        tcp_keepalive=True,
        parameter_validation=validate_parameters,
    )
    # A session of its own: boto3's default session is not safe to share across threads.
    return boto3.session.Session().client(
        "dynamodb",
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=config,
    )


def error_code(exc: ClientError) -> str | None:
    """DynamoDB's error code of a failed call ("ConditionalCheckFailedException", ...)."""
    return exc.response.get("Error", {}).get("Code")


def unavailable(operation: str, exc: Exception) -> RegistryUnavailable:
    """A botocore failure of `operation` as RegistryUnavailable, with a bounded `reason`."""
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "ClientError")
    else:
        code = type(exc).__name__
    if isinstance(
        exc, (botocore_exceptions.NoCredentialsError, botocore_exceptions.PartialCredentialsError)
    ):
        reason = "no_credentials"
    elif isinstance(exc, botocore_exceptions.ConnectionError):
        reason = "unreachable"  # refused, DNS, connect timeout, proxy
    elif isinstance(exc, botocore_exceptions.ReadTimeoutError):
        reason = "timeout"
    else:
        reason = code
    return RegistryUnavailable(f"DynamoDB {operation} failed: {code}", reason=reason)


@dataclass(frozen=True, slots=True)
class Table:
    """One table, reached through one boto3 client.

    Args:
        client: a boto3 DynamoDB client (see `make_client`).
        name: the table's name.
    """

    client: object
    name: str

    def api_call(self, operation: str, *, with_table: bool = True, **kwargs) -> dict:
        """`client.<operation>(**kwargs)`, on this table unless `with_table` is False.

        Raises:
            ClientError: a condition that did not hold (CALLER_DECIDES): an answer the
                caller interprets, not counted as an error.
            RegistryUnavailable: any other failure, counted in metrics by reason.
        """
        if with_table:
            kwargs["TableName"] = self.name
        with metrics.registry_call(operation) as call:
            try:
                return getattr(self.client, operation)(**kwargs)
            except ClientError as exc:
                if error_code(exc) in CALLER_DECIDES:
                    raise
                raise call.failed(unavailable(operation, exc)) from exc
            except BotoCoreError as exc:
                raise call.failed(unavailable(operation, exc)) from exc
