"""Per-tenant connection quota: a counter item moved in the same transaction as the item."""

import pytest

from realtime.registry import QuotaExceeded, RegistryError
from tests.conftest import NOW
from tests.records import conn

LIMIT = 3


@pytest.fixture
def quota(dynamodb):
    dynamodb.tenant_limit = LIMIT
    return dynamodb


def counter(registry, tenant="acme") -> int | None:
    item = registry.client.get_item(
        TableName=registry.table_name, Key={"connection_id": {"S": f"quota#{tenant}"}}
    ).get("Item")
    return None if item is None else int(item["open_connections"]["N"])


def test_registrations_stop_at_the_limit_per_tenant(quota):
    for i in range(LIMIT):
        quota.register(conn(f"a{i}"))
    with pytest.raises(QuotaExceeded, match="acme has its 3 connections open"):
        quota.register(conn("a-over"))
    assert quota.get("a-over") is None
    quota.register(conn("b0", tenant="beta"))  # other tenants are not affected
    assert (counter(quota), counter(quota, "beta")) == (LIMIT, 1)


def test_deregistration_frees_a_slot_once(quota):
    for i in range(LIMIT):
        quota.register(conn(f"a{i}"))
    quota.deregister("a0")
    quota.deregister("a0")  # already gone: not counted down twice
    assert counter(quota) == LIMIT - 1
    quota.register(conn("a-next"))
    with pytest.raises(QuotaExceeded):
        quota.register(conn("a-over"))


def test_an_existing_id_is_refused_without_counting(quota):
    quota.register(conn("a0"))
    with pytest.raises(RegistryError, match="exists"):
        quota.register(conn("a0", deployment_id="other"))  # the id, not our record
    assert counter(quota) == 1


def test_a_counter_drifted_up_is_lowered_by_a_recount(quota, clock):
    import asyncio

    from realtime.server.keeper import TtlKeeper

    # Items that DynamoDB expires are never counted down: three orphans hold the slots.
    for i in range(LIMIT):
        quota.register(conn(f"orphan{i}", expires_at=NOW + 10))
    clock.advance(60)  # now expired: not live, still counted
    with pytest.raises(QuotaExceeded):
        quota.register(conn("fresh", expires_at=NOW + 3600))
    keeper = TtlKeeper(
        registry=quota,
        ttl_seconds=3600,
        refresh_seconds=300,
        index_settle_seconds=0,
        instance="this-instance",
    )
    assert asyncio.run(keeper.recount_quota("acme")) is True
    assert counter(quota) == 0
    quota.register(conn("fresh", expires_at=NOW + 3600))
    assert counter(quota) == 1


def test_a_recount_is_void_if_the_counter_moved_meanwhile(quota, clock):
    for i in range(LIMIT):
        quota.register(conn(f"orphan{i}", expires_at=NOW + 10))
    clock.advance(60)
    counted, version = quota.quota_state("acme")
    assert counted == LIMIT
    quota.deregister("orphan0")  # a write between the read and the recount
    assert quota.lower_quota("acme", to=0, version=version) is False
    assert counter(quota) == LIMIT - 1


def test_a_recount_never_raises_the_counter(quota):
    quota.register(conn("a0"))
    _, version = quota.quota_state("acme")
    assert quota.lower_quota("acme", to=5, version=version) is False
    assert counter(quota) == 1


def test_batch_deregistration_counts_down_per_tenant(quota):
    for i in range(LIMIT):
        quota.register(conn(f"a{i}"))
    quota.register(conn("b0", tenant="beta"))
    tenants = {"a0": "acme", "a1": "acme", "b0": "beta"}
    assert quota.deregister_many(tenants, tenants=tenants) == []
    assert (counter(quota), counter(quota, "beta")) == (1, 0)


def test_counting_down_never_goes_below_zero(quota):
    quota.register(conn("a0"))
    quota.deregister_many(["a0", "ghost"], tenants={"a0": "acme", "ghost": "acme"})
    assert counter(quota) == 0


def test_counters_are_invisible_to_counts_and_listings(quota):
    quota.register(conn("a0"))
    assert quota.counts() == {"acme": {"prod": {"client": 1}}}
    assert [c.connection_id for c in quota.for_tenant("acme").connections] == ["a0"]
    assert list(quota.expired_ids()) == []


def test_without_a_limit_no_counter_is_kept(dynamodb):
    dynamodb.register(conn("a0"))
    dynamodb.deregister("a0")
    assert counter(dynamodb) is None
