"""connection: the registry record and its timestamps."""

import re
import uuid
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.core.connection import Connection, isoformat
from realtime.core.handshake import ConnectionRequest

REQUEST = ConnectionRequest(tenant="acme", deployment_id="prod-1", connection_type="browser")
NOW = 1769860800.75  # 2026-01-31T12:00:00.750Z


def open_connection(now: float = NOW, ttl_seconds: int = 3600) -> Connection:
    return Connection.open(
        REQUEST,
        now=now,
        ttl_seconds=ttl_seconds,
        instance_id="instance-a",
        channel_name="specific.abc!def",
        client_addr="[::1]:51000",
    )


# -- isoformat -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "epoch, expected",
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1769860800, "2026-01-31T12:00:00.000Z"),
        (1769860800.5, "2026-01-31T12:00:00.500Z"),
        (1769860800.001, "2026-01-31T12:00:00.001Z"),
        (1769860800.9994, "2026-01-31T12:00:00.999Z"),
        (951782400, "2000-02-29T00:00:00.000Z"),
        (4102444799, "2099-12-31T23:59:59.000Z"),
    ],
)
def test_isoformat_is_utc_with_milliseconds_and_z(epoch, expected):
    assert isoformat(epoch) == expected


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=0, max_value=4102444800))
def test_isoformat_always_has_one_shape_and_reads_back(epoch):
    text = isoformat(epoch)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", text)
    assert abs(datetime.fromisoformat(text).timestamp() - epoch) < 0.001


# -- Connection.open -----------------------------------------------------------------------


def test_open_copies_the_request_and_the_callers_context():
    connection = open_connection()
    assert (connection.tenant, connection.deployment_id, connection.connection_type) == (
        "acme",
        "prod-1",
        "browser",
    )
    assert (connection.instance_id, connection.channel_name, connection.client_addr) == (
        "instance-a",
        "specific.abc!def",
        "[::1]:51000",
    )
    assert connection.connected_at == "2026-01-31T12:00:00.750Z"


@pytest.mark.parametrize(
    "now, ttl_seconds, expires_at",
    [(NOW, 3600, 1769864400), (1000.0, 60, 1060), (1000.999, 60, 1060), (1000, 0, 1000)],
)
def test_expires_at_is_whole_seconds_now_plus_ttl(now, ttl_seconds, expires_at):
    connection = open_connection(now, ttl_seconds)
    assert connection.expires_at == expires_at
    assert type(connection.expires_at) is int


def test_connection_id_is_a_canonical_uuid4():
    connection_id = open_connection().connection_id
    parsed = uuid.UUID(connection_id)
    assert parsed.version == 4
    assert parsed.variant == uuid.RFC_4122
    assert str(parsed) == connection_id


def test_every_open_gets_a_fresh_id():
    ids = {open_connection().connection_id for _ in range(10000)}
    assert len(ids) == 10000


def test_connection_is_frozen():
    connection = open_connection()
    with pytest.raises(AttributeError):
        connection.tenant = "other"


# -- is_expired ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "now, expired",
    [
        (1059.0, False),
        (1059.999, False),
        (1060, False),
        (1060.0, False),
        (1060.001, True),
        (1061, True),
    ],
)
def test_is_expired_only_after_expires_at(now, expired):
    # DynamoDB reads filter `ttl < now`: the record still counts at the second it expires.
    assert open_connection(1000.0, 60).is_expired(now) is expired


# -- public_fields -------------------------------------------------------------------------


def test_public_fields_are_what_the_client_sees():
    connection = open_connection()
    assert connection.public_fields() == {
        "connection_id": connection.connection_id,
        "tenant": "acme",
        "deployment_id": "prod-1",
        "connection_type": "browser",
        "connected_at": "2026-01-31T12:00:00.750Z",
        "expires_at": "2026-01-31T13:00:00.000Z",
    }
