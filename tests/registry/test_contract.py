"""The registry contract (realtime/registry/base.py), held against every backend that claims it.

Backends:
- `moto`: DynamoDBRegistry on moto's in-process mock (`mock_aws`): fast.
- `fake_endpoint`: DynamoDBRegistry over HTTP on the benchmark's fake DynamoDB, a real
  process (`python -m bench.fake_dynamodb`): benchmarks on it are only worth something if the
  registry behaves there as it does on moto.
- `disabled`: DisabledRegistry, which records nothing (`records` False). Cases that read back
  what they wrote do not apply to it and run on the recording backends only; every method of
  the contract is still called on it and must answer (`test_every_method_of_the_contract_answers`),
  and cases of its own say what it answers instead.

Each case starts on an empty store whose clock reads NOW. What a DynamoDB backend wrote is
checked in its table too (tests/registry/store.py), not only through the registry's answers.
"""

import asyncio
from dataclasses import replace

import pytest

from realtime.core.connection import isoformat
from realtime.core.leases import Lease, LeaseState
from realtime.registry import (
    ConnectionRegistry,
    InvalidCursor,
    LeaseLost,
    Page,
    QuotaExceeded,
    RegistryError,
    TableReport,
)
from realtime.registry.disabled import DisabledRegistry
from realtime.server.keeper import TtlKeeper
from tests.conftest import EXPECTED_INDEXES, NOW
from tests.records import (
    TENANT_DATA,
    TENANT_NARROWINGS,
    TTL,
    conn,
    live_among_expired,
    read_all_pages,
    seed,
)
from tests.registry.store import counter, ids, item_count, raw_item, ttl_description

RECORDING = ["moto", pytest.param("fake_endpoint", marks=pytest.mark.e2e)]
BACKENDS = [*RECORDING, "disabled"]


def backend(request, name: str) -> ConnectionRegistry:
    if name == "moto":
        return request.getfixturevalue("dynamodb")
    if name == "fake_endpoint":
        return request.getfixturevalue("fake_dynamodb")
    return DisabledRegistry()


@pytest.fixture(params=BACKENDS)
def registry(request) -> ConnectionRegistry:
    """Each backend that claims the contract, on an empty store."""
    return backend(request, request.param)


# Cases that read back what they gave the registry: they run on the backends that record (a
# backend that records nothing answers every read with nothing, by design).
needs_records = pytest.mark.parametrize("registry", RECORDING, indirect=True)
# Cases about what a backend that records nothing answers instead.
records_nothing = pytest.mark.parametrize("registry", ["disabled"], indirect=True)


# --- every method ---------------------------------------------------------------------------


class Calls:
    """A registry whose attributes record their names as they are used."""

    def __init__(self, registry: ConnectionRegistry):
        self.registry = registry
        self.names: set[str] = set()

    def __getattr__(self, name):
        self.names.add(name)
        return getattr(self.registry, name)


def lease_of(instance_id: str, *, started_at: float = NOW) -> Lease:
    """A new instance's lease, as the instance writes it when it joins the fleet."""
    return Lease(
        instance_id=instance_id,
        host="host-a",
        pid=4242,
        started_at=isoformat(started_at),
        version="tests",
        renewals=0,
        renewed_at=started_at,
        state=LeaseState.LIVE,
        connections=0,
    )


def contract_names() -> set[str]:
    """The public methods and attributes that base.py declares for every backend."""
    return {name for name in vars(ConnectionRegistry) if not name.startswith("_")}


def test_every_method_of_the_contract_answers(registry):
    """Every backend answers every method of the contract (create_table: at the end). Where
    a case asks about what nobody wrote, every backend gives the same answer, whether it
    records or not."""
    calls = Calls(registry)

    assert isinstance(calls.location, str) and calls.location
    assert isinstance(calls.records, bool)
    calls.register(conn("c-1"))
    assert calls.refresh("c-1", NOW + 10) is True
    assert calls.get("never-registered") is None
    assert calls.for_tenant("nobody") == Page([], None)
    assert calls.instance_page("no-instance") == Page([], None)
    assert list(calls.for_instance("no-instance", include_expired=True)) == []
    assert calls.counts(tenant="nobody") == {}
    assert calls.live_count("nobody") == 0
    assert list(calls.expired_ids()) == []
    assert calls.quota_state("nobody") == (0, 0)
    assert calls.lower_quota("nobody", to=0, version=0) is False
    calls.deregister("c-1")
    assert calls.deregister_many(["c-1", "never-registered"]) == []
    assert (calls.describe_table() is not None) == registry.records
    other = calls.with_table("other_table")
    assert (type(other), other.table_name) == (type(registry), "other_table")
    calls.acquire_lease(lease_of("i-1"))
    assert calls.renew_lease("i-1", connections=0, renewed_at=NOW) == 1
    assert [lease.instance_id for lease in calls.leases()] == (["i-1"] if registry.records else [])
    assert calls.written_off() == frozenset()
    assert calls.lease("no-instance") is None
    assert calls.take_over_lease(lease_of("no-instance"), reaper="i-1") is None
    assert calls.bump_reaping("no-instance", reaper="i-1") is None
    assert calls.release_lease("no-instance") is False

    async def twins():
        await calls.aregister(conn("c-2"))
        assert await calls.arefresh("c-2", NOW + 10) is True
        assert await calls.aget("never-registered") is None
        assert await calls.afor_tenant("nobody") == Page([], None)
        assert await calls.ainstance_page("no-instance") == Page([], None)
        assert await calls.ainstance_items("no-instance") == []
        assert await calls.acounts(tenant="nobody") == {}
        assert await calls.alive_count("nobody") == 0
        assert await calls.aquota_state("nobody") == (0, 0)
        assert await calls.alower_quota("nobody", to=0, version=0) is False
        assert (await calls.adescribe_table() is not None) == registry.records
        await calls.aderegister("c-2")
        assert await calls.aderegister_many(["c-2"]) == []
        await calls.aacquire_lease(lease_of("i-2"))
        assert await calls.arenew_lease("i-2", connections=0, renewed_at=NOW) == 1
        assert isinstance(await calls.aleases(), list)
        assert await calls.alease("no-instance") is None
        assert await calls.atake_over_lease(lease_of("no-instance"), reaper="i-2") is None
        assert await calls.abump_reaping("no-instance", reaper="i-2") is None
        assert await calls.arelease_lease("no-instance") is False

    asyncio.run(twins())
    missed = contract_names() - {"create_table"} - calls.names
    assert not missed, f"call the contract's {sorted(missed)} in this case too"


# --- writes ---------------------------------------------------------------------------------


@needs_records
def test_register_writes_every_field_with_numeric_ttl_and_scope_key(registry):
    registry.register(conn("c-1"))

    assert raw_item(registry, "c-1") == {
        "connection_id": {"S": "c-1"},
        "tenant": {"S": "acme"},
        "deployment_id": {"S": "prod"},
        "connection_type": {"S": "client"},
        "connected_at": {"S": isoformat(NOW)},
        "ttl": {"N": str(NOW + TTL)},
        "instance_id": {"S": "host-a-1-0a0b0c0d"},
        "channel_name": {"S": "specific.c-1"},
        "client_addr": {"S": "203.0.113.7:50123"},
        "scope_key": {"S": "prod#client#c-1"},
    }
    assert registry.get("c-1") == conn("c-1")
    assert registry.get("never-registered") is None


@needs_records
def test_register_never_overwrites_an_existing_item(registry):
    registry.register(conn("c-1"))
    before = raw_item(registry, "c-1")

    with pytest.raises(RegistryError) as caught:
        registry.register(conn("c-1", tenant="intruder", expires_at=NOW + 99999))

    assert type(caught.value) is RegistryError  # taken id, not "DynamoDB unavailable"
    assert raw_item(registry, "c-1") == before


@needs_records
def test_a_retried_registration_whose_first_attempt_landed_succeeds(registry):
    """botocore retries a put that timed out on our side; if the first attempt landed, the
    retry's condition fails on our own item, which is success, not an id collision."""
    record = conn("c1")
    registry.register(record)
    registry.register(record)  # the same record again: ours
    with pytest.raises(RegistryError, match="exists"):
        registry.register(conn("c1", tenant="other"))  # another record with the id


@needs_records
def test_refresh_moves_ttl_of_an_existing_item_and_nothing_else(registry):
    registry.register(conn("c-1"))
    before = raw_item(registry, "c-1")

    assert registry.refresh("c-1", NOW + 5000) is True

    assert raw_item(registry, "c-1") == {**before, "ttl": {"N": str(NOW + 5000)}}


@needs_records
def test_refresh_of_a_deregistered_or_missing_id_returns_false_and_creates_nothing(registry):
    registry.register(conn("c-1"))
    registry.deregister("c-1")

    assert registry.refresh("c-1", NOW + 5000) is False
    assert registry.refresh("never-registered", NOW + 5000) is False

    assert raw_item(registry, "c-1") is None
    assert item_count(registry) == 0


@needs_records
def test_deregister_is_idempotent(registry):
    registry.register(conn("c-1"))
    registry.register(conn("c-2"))

    registry.deregister("c-1")
    registry.deregister("c-1")
    registry.deregister("never-registered")

    assert registry.get("c-1") is None
    assert registry.get("c-2") == conn("c-2")


@needs_records
def test_deregister_many_deletes_every_id_given_and_nothing_else(registry):
    seed(registry, [conn(f"c-{i:02d}") for i in range(60)])
    registry.register(conn("keep"))

    # More than one batch's worth, an id twice and an id never registered.
    requested = [f"c-{i:02d}" for i in range(60)] + ["c-00", "never-registered"]
    assert registry.deregister_many(requested) == []

    assert item_count(registry) == 1
    assert registry.get("keep") == conn("keep")


# --- get ------------------------------------------------------------------------------------


def test_get_returns_none_for_a_missing_item(registry):
    assert registry.get("never-registered") is None


@needs_records
def test_get_returns_none_for_an_expired_item(registry, clock):
    registry.register(conn("expired", expires_at=NOW - 1))
    registry.register(conn("last-second", expires_at=NOW))

    assert registry.get("expired") is None
    assert registry.get("last-second") == conn("last-second", expires_at=NOW)
    clock.advance(0.5)
    assert registry.get("last-second") is None


# --- for_tenant -----------------------------------------------------------------------------


@needs_records
@pytest.mark.parametrize("tenant, narrowing, expected", TENANT_NARROWINGS)
def test_for_tenant_narrows_by_deployment_and_then_type(registry, tenant, narrowing, expected):
    seed(registry, TENANT_DATA)

    page = registry.for_tenant(tenant, **narrowing)

    by_id = {c.connection_id: c for c in TENANT_DATA}
    assert page.connections == [by_id[i] for i in expected]  # in index (scope_key) order
    assert page.cursor is None


@needs_records
def test_for_tenant_excludes_items_expired_by_the_clock(registry, clock):
    seed(registry, [conn("early", expires_at=NOW), conn("late", expires_at=NOW + 10)])

    assert ids(registry.for_tenant("acme").connections) == ["early", "late"]
    # Same rule as get(): an item with ttl < now is gone, also for a fractional now.
    clock.advance(0.5)
    assert registry.get("early") is None
    assert ids(registry.for_tenant("acme").connections) == ["late"]
    clock.advance(10)
    assert registry.for_tenant("acme").connections == []


@needs_records
@pytest.mark.parametrize("expired_between", [0, 2])
def test_for_tenant_paginates_without_duplicates_or_gaps(registry, expired_between):
    seed(registry, live_among_expired(expired_between))

    pages = read_all_pages(registry, "acme", deployment_id="prod", limit=100)

    assert [len(p.connections) for p in pages] == [100, 100, 50]
    assert [p.cursor is None for p in pages] == [False, False, True]
    assert [c.connection_id for p in pages for c in p.connections] == [
        f"live-{i:03d}" for i in range(250)
    ]
    with pytest.raises(InvalidCursor):
        registry.for_tenant("acme2", cursor=pages[0].cursor)


@needs_records
def test_for_tenant_rejects_a_cursor_of_another_tenant(registry):
    seed(registry, [conn("a0"), conn("a1"), conn("b0", tenant="acme2"), conn("b1", tenant="acme2")])
    cursor = registry.for_tenant("acme2", limit=1).cursor
    assert cursor is not None

    with pytest.raises(InvalidCursor):
        registry.for_tenant("acme", cursor=cursor)


@needs_records
def test_for_tenant_rejects_a_cursor_of_another_deployment(registry):
    # Real DynamoDB answers a start key outside the key condition with a ValidationException,
    # which would surface as "unavailable"; moto silently starts elsewhere. Neither is right.
    prod_1 = [conn(f"p{i}", deployment_id="prod-1") for i in range(3)]
    seed(registry, [conn("a0"), conn("a1"), conn("a2"), *prod_1])
    cursor = registry.for_tenant("acme", deployment_id="prod", limit=1).cursor
    assert cursor is not None

    with pytest.raises(InvalidCursor):
        registry.for_tenant("acme", deployment_id="prod-1", cursor=cursor)
    with pytest.raises(InvalidCursor):
        registry.for_tenant("acme", deployment_id="prod", connection_type="worker", cursor=cursor)
    # The same cursor stays valid for a wider query that contains it.
    wider = registry.for_tenant("acme", cursor=cursor).connections
    assert ids(wider) == ["a1", "a2", "p0", "p1", "p2"]


def test_for_tenant_wants_a_deployment_for_a_connection_type(registry):
    with pytest.raises(ValueError):
        registry.for_tenant("acme", connection_type="client")


# --- one instance's connections -------------------------------------------------------------


@needs_records
def test_instance_page_pages_one_instance_in_id_order(registry, clock):
    mine = [conn(f"m-{i:03d}", instance_id="host-a") for i in range(25)]
    expired = [conn(f"m-x{i}", instance_id="host-a", expires_at=NOW - 1) for i in range(5)]
    others = [conn(f"o-{i:03d}", instance_id="host-ab") for i in range(5)]
    seed(registry, mine + expired + others)

    pages, cursor = [], None
    while len(pages) < 10:
        page = registry.instance_page("host-a", limit=10, cursor=cursor)
        pages.append(page)
        cursor = page.cursor
        if cursor is None:
            break

    assert [len(p.connections) for p in pages] == [10, 10, 5]
    assert [c for p in pages for c in p.connections] == mine
    with pytest.raises(InvalidCursor):
        registry.instance_page("host-ab", cursor=pages[0].cursor)
    with pytest.raises(InvalidCursor):
        registry.for_tenant("acme", cursor=pages[0].cursor)  # an instance's, not a tenant's


@needs_records
def test_for_instance_returns_every_connection_of_one_instance(registry):
    mine = [conn(f"m-{i:03d}", instance_id="host-a") for i in range(110)]
    expired = [conn(f"m-x{i}", instance_id="host-a", expires_at=NOW - 1) for i in range(10)]
    others = [conn(f"o-{i:03d}", instance_id="host-ab") for i in range(30)]
    seed(registry, mine + expired + others)

    live = list(registry.for_instance("host-a"))

    assert sorted(ids(live)) == sorted(ids(mine))
    assert len(live) == len(set(ids(live)))
    assert sorted(live, key=str) == sorted(mine, key=str)  # whole records, not just ids
    everything = list(registry.for_instance("host-a", include_expired=True))
    assert sorted(ids(everything)) == sorted(ids(mine + expired))


# --- counts and expired items ---------------------------------------------------------------


@needs_records
def test_counts_per_tenant_deployment_and_type_leave_out_expired(registry):
    seed(
        registry,
        [
            conn("a1", tenant="acme", deployment_id="prod", connection_type="client"),
            conn("a2", tenant="acme", deployment_id="prod", connection_type="client"),
            conn("a3", tenant="acme", deployment_id="prod", connection_type="worker"),
            conn("a4", tenant="acme", deployment_id="prod-1", connection_type="client"),
            conn("b1", tenant="beta", deployment_id="prod", connection_type="client"),
            conn("x1", tenant="acme", deployment_id="prod", expires_at=NOW - 1),
        ],
    )
    acme = {"prod": {"client": 2, "worker": 1}, "prod-1": {"client": 1}}
    assert registry.counts() == {"acme": acme, "beta": {"prod": {"client": 1}}}
    assert registry.counts(tenant="acme") == {"acme": acme}
    assert registry.counts(tenant="nobody") == {}
    assert registry.live_count("acme") == 4


@needs_records
def test_expired_ids_lists_only_items_past_their_ttl(registry, clock):
    seed(registry, [conn("live"), conn("old", expires_at=NOW - 10), conn("edge", expires_at=NOW)])
    assert set(registry.expired_ids()) == {"old"}
    clock.advance(1)
    assert set(registry.expired_ids()) == {"old", "edge"}


# --- async twins ----------------------------------------------------------------------------


@needs_records
def test_async_twins_answer_as_their_methods(registry):
    async def scenario():
        await registry.aregister(conn("c-1"))
        await registry.aregister(conn("c-2"))
        got = await registry.aget("c-1")
        refreshed = await registry.arefresh("c-1", NOW + 9000)
        missing = await registry.arefresh("nope", NOW + 9000)
        await registry.aderegister("c-2")
        leftover = await registry.aderegister_many(["c-1", "c-3"])
        return got, refreshed, missing, leftover

    got, refreshed, missing, leftover = asyncio.run(scenario())

    assert got == conn("c-1")
    assert (refreshed, missing, leftover) == (True, False, [])
    assert item_count(registry) == 0


@needs_records
def test_async_register_raises_registry_error_for_a_taken_id(registry):
    registry.register(conn("c-1"))

    with pytest.raises(RegistryError):
        asyncio.run(registry.aregister(conn("c-1", tenant="other")))


# --- per-tenant quota -----------------------------------------------------------------------

LIMIT = 3


@pytest.fixture(params=RECORDING)
def quota(request) -> ConnectionRegistry:
    """A recording backend with a limit of LIMIT open connections per tenant."""
    registry = backend(request, request.param)
    registry.tenant_limit = LIMIT
    return registry


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
    with pytest.raises(RegistryError, match="exists") as caught:
        quota.register(conn("a0", deployment_id="other"))  # the id, not our record
    assert type(caught.value) is RegistryError
    assert counter(quota) == 1


def test_a_retried_quota_registration_whose_first_attempt_landed_succeeds(quota):
    record = conn("c1")
    quota.register(record)
    quota.register(record)
    assert counter(quota) == 1


def test_quota_state_reads_the_counter_and_its_version(quota, clock):
    quota.register(conn("orphan0", expires_at=NOW + 10))
    quota.register(conn("orphan1", expires_at=NOW + 10))
    quota.register(conn("orphan2", expires_at=NOW + 10))
    clock.advance(60)  # expired, still counted
    with pytest.raises(QuotaExceeded):
        quota.register(conn("fresh", expires_at=NOW + 3600))

    counted, version = quota.quota_state("acme")
    assert (counted, version) == (LIMIT, LIMIT)  # one version per write of the counter
    assert quota.lower_quota("acme", to=0, version=version - 1) is False  # moved meanwhile
    assert quota.lower_quota("acme", to=0, version=version) is True
    assert quota.quota_state("acme") == (0, version + 1)
    assert quota.quota_state("nobody") == (0, 0)
    quota.register(conn("fresh", expires_at=NOW + 3600))
    assert counter(quota) == 1


def test_a_counter_drifted_up_is_lowered_by_a_recount(quota, clock):
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
    quota.register(conn("b0", tenant="beta"))
    tenants = {"a0": "acme", "ghost": "acme", "b0": "beta", "beta-ghost": "beta"}
    assert quota.deregister_many(tenants, tenants=tenants) == []
    assert (counter(quota), counter(quota, "beta")) == (0, 0)


def test_counters_are_invisible_to_counts_and_listings(quota):
    quota.register(conn("a0"))
    assert quota.counts() == {"acme": {"prod": {"client": 1}}}
    assert [c.connection_id for c in quota.for_tenant("acme").connections] == ["a0"]
    assert list(quota.expired_ids()) == []
    quota.deregister("a0")
    assert quota.counts() == {}


@needs_records
def test_without_a_limit_no_counter_is_kept(registry):
    registry.register(conn("a0"))
    registry.deregister("a0")
    assert counter(registry) is None


# --- the fleet: instance leases -------------------------------------------------------------


@needs_records
def test_a_lease_is_acquired_once_and_renewed_by_its_holder(registry):
    registry.acquire_lease(lease_of("i-b", started_at=NOW + 1))
    registry.acquire_lease(lease_of("i-a"))
    with pytest.raises(RegistryError) as caught:
        registry.acquire_lease(lease_of("i-a"))
    assert type(caught.value) is RegistryError

    assert registry.renew_lease("i-a", connections=7, renewed_at=NOW + 3) == 1
    assert registry.renew_lease("i-a", connections=5, renewed_at=NOW + 6) == 2

    renewed = replace(lease_of("i-a"), renewals=2, connections=5, renewed_at=NOW + 6)
    assert registry.lease("i-a") == renewed
    assert registry.leases() == [renewed, lease_of("i-b", started_at=NOW + 1)]  # oldest first
    # Lease items are not connections: no read of connections sees them.
    assert registry.counts() == {}
    assert list(registry.for_instance("i-a", include_expired=True)) == []
    assert list(registry.expired_ids()) == []


@needs_records
def test_a_lapsed_lease_is_taken_over_once_and_its_holder_is_fenced(registry):
    registry.acquire_lease(lease_of("i-dead"))
    seen = registry.lease("i-dead")

    assert registry.take_over_lease(seen, reaper="i-1") == 1
    assert registry.take_over_lease(seen, reaper="i-2") is None  # the counter moved: too late
    with pytest.raises(LeaseLost):
        registry.renew_lease("i-dead", connections=0, renewed_at=NOW)
    assert registry.lease("i-dead").reaper == "i-1"

    assert registry.bump_reaping("i-dead", reaper="i-1") == 2
    assert registry.bump_reaping("i-dead", reaper="i-2") is None
    assert registry.release_lease("i-dead") is False  # no longer its holder's, nor live
    assert registry.release_lease("i-dead", reaper="i-2") is False
    assert registry.release_lease("i-dead", reaper="i-1") is True
    assert registry.lease("i-dead") is None
    assert registry.leases() == []


@needs_records
def test_an_instance_releases_its_own_live_lease(registry):
    registry.acquire_lease(lease_of("i-a"))

    assert registry.release_lease("i-a") is True
    assert registry.release_lease("i-a") is False
    with pytest.raises(LeaseLost):
        registry.renew_lease("i-a", connections=0, renewed_at=NOW)


@needs_records
def test_reads_leave_out_the_connections_of_an_instance_being_reaped(registry):
    dead = [conn(f"d-{i}", instance_id="i-dead") for i in range(3)]
    live = [conn(f"l-{i}", instance_id="i-live") for i in range(2)]
    seed(registry, dead + live)
    registry.acquire_lease(lease_of("i-dead"))
    registry.acquire_lease(lease_of("i-live"))
    registry.take_over_lease(registry.lease("i-dead"), reaper="i-live")
    assert registry.get("d-0") == dead[0]  # believed until a fleet read says otherwise

    registry.leases()

    assert registry.written_off() == frozenset({"i-dead"})
    assert registry.get("d-0") is None
    assert registry.get("l-0") == live[0]
    assert ids(registry.for_tenant("acme").connections) == ["l-0", "l-1"]
    assert registry.instance_page("i-dead") == Page([], None)
    assert list(registry.for_instance("i-dead")) == []
    assert registry.counts() == {"acme": {"prod": {"client": 2}}}
    assert registry.live_count("acme") == 2
    # The reaper still finds what it has to delete.
    reaped = registry.for_instance("i-dead", include_expired=True)
    assert sorted(ids(reaped)) == ["d-0", "d-1", "d-2"]


# --- the table ------------------------------------------------------------------------------


@needs_records
def test_create_table_creates_indexes_and_ttl_and_is_idempotent(registry):
    new = registry.with_table(f"{registry.table_name}_new")
    assert new.describe_table() is None

    first = new.create_table()
    again = new.create_table(wait=True)

    name = new.table_name
    assert first == TableReport(name, created=True, status="ACTIVE", ttl_enabled_now=True)
    assert again == TableReport(name, created=False, status="ACTIVE", ttl_enabled_now=False)
    table = new.describe_table()
    assert table["KeySchema"] == [{"AttributeName": "connection_id", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert {
        i["IndexName"]: i["KeySchema"]
        for i in table["GlobalSecondaryIndexes"]
        if i["Projection"] == {"ProjectionType": "ALL"} and i["IndexStatus"] == "ACTIVE"
    } == EXPECTED_INDEXES
    assert ttl_description(new) == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}
    new.register(conn("c-1"))
    assert new.get("c-1") == conn("c-1")


@records_nothing
def test_create_table_of_a_registry_that_records_nothing_refuses_in_one_line(registry):
    with pytest.raises(RegistryError) as refused:
        registry.create_table()

    assert type(refused.value) is RegistryError  # not "unavailable": trying again is no use
    assert "REGISTRY_ENABLED=false" in str(refused.value)
    assert "no table to create" in str(refused.value)
    assert "\n" not in str(refused.value)
    assert registry.describe_table() is None


@records_nothing
def test_a_registry_that_records_nothing_finds_nothing_it_was_given(registry):
    registry.register(conn("c-1"))
    seen = replace(conn("c-1"), expires_at=NOW + 5000)

    assert registry.refresh("c-1", seen.expires_at) is True  # the open connection stays open
    assert registry.get("c-1") is None
    assert registry.for_tenant("acme") == Page([], None)
    assert registry.instance_page(seen.instance_id) == Page([], None)
    assert list(registry.for_instance(seen.instance_id, include_expired=True)) == []
    assert registry.counts() == {}
    assert registry.live_count("acme") == 0
