"""The quota's transactions on moto, stubbed where DynamoDB would race or fail
(realtime/registry/dynamodb/quota.py). What a quota admits and refuses, on every backend that
records, is in the contract suite (test_contract.py, "per-tenant quota")."""

import asyncio
import logging

import pytest
from botocore.exceptions import ClientError

import realtime.registry.dynamodb.quota as quota_module
from realtime.registry import RegistryUnavailable
from tests.records import conn
from tests.registry.store import client_error, counter, raw_item

LIMIT = 3


@pytest.fixture
def quota(dynamodb, spy):
    """The moto registry with a limit of LIMIT per tenant, its client spied."""
    dynamodb.tenant_limit = LIMIT
    return dynamodb


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """The backoffs between transaction attempts, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(quota_module.time, "sleep", slept.append)
    return slept


def conflict() -> ClientError:
    """A transaction cancelled because another one moved the counter at the same moment."""
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": [{"Code": "TransactionConflict"}, {"Code": "None"}],
        },
        "TransactWriteItems",
    )


def test_a_registration_that_lost_the_counter_to_another_is_tried_again(quota, spy, sleeps):
    lost = []

    def conflicts_once(real, **kwargs):
        if not lost:
            lost.append(True)
            raise conflict()
        return real(**kwargs)

    spy.stubs["transact_write_items"] = conflicts_once

    quota.register(conn("a0"))

    assert spy.operations() == ["transact_write_items", "transact_write_items"]
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.01  # a short random backoff
    assert quota.get("a0") == conn("a0")
    assert counter(quota) == 1


def test_a_registration_that_keeps_losing_is_unavailable_as_a_conflict(quota, spy, sleeps):
    def always_conflicts(real, **kwargs):
        raise conflict()

    spy.stubs["transact_write_items"] = always_conflicts

    with pytest.raises(RegistryUnavailable) as caught:
        quota.register(conn("a0"))

    assert caught.value.reason == "conflict"
    assert spy.operations() == ["transact_write_items"] * 5
    assert len(sleeps) == 5  # backoffs growing from 10 ms: at most 10, 20, 40, 80, 160
    assert all(0 <= slept <= 0.01 * 2**attempt for attempt, slept in enumerate(sleeps))
    assert raw_item(quota, "a0") is None
    assert counter(quota) is None


def test_a_count_down_that_fails_is_logged_and_left_to_a_recount(quota, spy, caplog):
    quota.register(conn("a0"))

    def throttled(real, **kwargs):
        raise client_error("ProvisionedThroughputExceededException", "UpdateItem")

    spy.stubs["update_item"] = throttled
    with caplog.at_level(logging.WARNING, logger="realtime.registry.dynamodb"):
        quota.deregister("a0")  # the item is gone: that is what the caller asked

    assert raw_item(quota, "a0") is None
    assert counter(quota) == 1  # counted too high until a recount lowers it
    (message,) = caplog.messages
    assert message.startswith("registry.quota_release_failed tenant=acme")


def test_each_async_registration_is_its_own_transaction(quota, spy):
    async def scenario():
        await asyncio.gather(*(quota.aregister(conn(f"a{i}")) for i in range(LIMIT)))
        await asyncio.gather(*(quota.aderegister(f"a{i}") for i in range(LIMIT)))

    asyncio.run(scenario())

    # Never coalesced into batch writes: a batch put cannot count, a batch delete cannot say
    # whether it deleted.
    assert "batch_write_item" not in spy.operations()
    assert spy.operations().count("transact_write_items") == LIMIT
    assert spy.operations().count("delete_item") == LIMIT
    assert counter(quota) == 0
