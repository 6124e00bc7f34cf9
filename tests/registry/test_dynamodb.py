"""DynamoDBRegistry on moto, its calls recorded and stubbed: how DynamoDB is asked.

What every backend answers is held in the contract suite (test_contract.py); here, what
only the DynamoDB backend's calls show: batches of 25 and their retries, Queries of the
right index and never a Scan, the registry's own threads, coalesced writes. The table's
creation is in test_table.py, cursors in test_cursors.py, dead endpoints in test_client.py.
"""

import asyncio

import pytest

import realtime.registry.dynamodb.batches as batches_module
from realtime.registry import RegistryUnavailable
from tests.conftest import NOW
from tests.records import (
    TENANT_DATA,
    TENANT_NARROWINGS,
    conn,
    live_among_expired,
    read_all_pages,
    seed,
)
from tests.registry.conftest import TABLE
from tests.registry.store import client_error, ids, item_count

# --- deregister_many: batches of 25 -------------------------------------------------------


def test_deregister_many_deletes_more_than_25_ids_in_batches(dynamodb, spy):
    seed(dynamodb, [conn(f"c-{i:02d}") for i in range(60)])
    keep = conn("keep")
    dynamodb.register(keep)
    # A repeated id would make BatchWriteItem reject the whole batch; it is sent once.
    requested = [f"c-{i:02d}" for i in range(60)] + ["c-00", "never-registered"]
    spy.calls.clear()

    assert dynamodb.deregister_many(requested) == []

    batches = [kw["RequestItems"][TABLE] for kw in spy.kwargs("batch_write_item")]
    assert [len(batch) for batch in batches] == [25, 25, 11]
    sent = [r["DeleteRequest"]["Key"]["connection_id"]["S"] for batch in batches for r in batch]
    assert sent == list(dict.fromkeys(requested))
    assert item_count(dynamodb) == 1
    assert dynamodb.get("keep") == keep


def test_deregister_many_retries_unprocessed_items(dynamodb, spy, monkeypatch):
    seed(dynamodb, [conn(f"c-{i:02d}") for i in range(30)])
    monkeypatch.setattr(batches_module.time, "sleep", lambda seconds: None)
    rounds = []

    def half_unprocessed_the_first_time(real, **kwargs):
        requests = kwargs["RequestItems"][TABLE]
        rounds.append(len(requests))
        if len(rounds) > 1:
            return real(**kwargs)
        real(RequestItems={TABLE: requests[::2]})
        return {"UnprocessedItems": {TABLE: requests[1::2]}}

    spy.stubs["batch_write_item"] = half_unprocessed_the_first_time

    assert dynamodb.deregister_many([f"c-{i:02d}" for i in range(30)]) == []
    assert rounds == [25, 12, 5]
    assert item_count(dynamodb) == 0


@pytest.mark.parametrize("failure", ["unprocessed", "error"])
def test_deregister_many_returns_the_ids_it_could_not_delete(dynamodb, spy, monkeypatch, failure):
    seed(dynamodb, [conn(f"c-{i:02d}") for i in range(30)])
    sleeps = []
    monkeypatch.setattr(batches_module.time, "sleep", sleeps.append)

    def keeps_failing(real, **kwargs):
        if failure == "error":
            raise client_error("ProvisionedThroughputExceededException", "BatchWriteItem")
        return {"UnprocessedItems": kwargs["RequestItems"]}

    spy.stubs["batch_write_item"] = keeps_failing
    spy.calls.clear()
    requested = [f"c-{i:02d}" for i in range(30)]

    assert dynamodb.deregister_many(requested, attempts=3) == requested
    assert len(spy.kwargs("batch_write_item")) == 2 * 3  # two batches, three attempts each
    # Backoff between attempts, none after the last one (it would only delay the caller).
    assert sleeps == [0.05, 0.1, 0.05, 0.1]
    assert item_count(dynamodb) == 30


# --- reads: Queries of an index, never a Scan -----------------------------------------------


def test_for_tenant_asks_one_query_of_the_tenant_index_and_never_scans(dynamodb, spy):
    seed(dynamodb, TENANT_DATA)

    for tenant, narrowing, _ in TENANT_NARROWINGS:
        spy.calls.clear()
        dynamodb.for_tenant(tenant, **narrowing)

        assert spy.operations() == ["query"], narrowing
        (query,) = spy.kwargs("query")
        assert query["IndexName"] == "by_tenant"


@pytest.mark.parametrize("expired_between", [0, 2])
def test_for_tenant_pages_are_queries_of_the_tenant_index(dynamodb, spy, expired_between):
    seed(dynamodb, live_among_expired(expired_between))
    spy.calls.clear()

    pages = read_all_pages(dynamodb, "acme", deployment_id="prod", limit=100)

    assert [len(p.connections) for p in pages] == [100, 100, 50]
    queries = spy.kwargs("query")
    assert {q["IndexName"] for q in queries} == {"by_tenant"}
    assert "scan" not in spy.operations()
    if expired_between:
        assert len(queries) > 3  # pages were filled by reading on after the filter


def test_for_tenant_wants_a_deployment_for_a_connection_type_before_asking(dynamodb, spy):
    with pytest.raises(ValueError):
        dynamodb.for_tenant("acme", connection_type="client")
    assert spy.calls == []


def test_for_instance_returns_one_instance_across_pages(dynamodb, spy):
    mine = [conn(f"m-{i:03d}", instance_id="host-a") for i in range(110)]
    expired = [conn(f"m-x{i}", instance_id="host-a", expires_at=NOW - 1) for i in range(10)]
    others = [conn(f"o-{i:03d}", instance_id="host-ab") for i in range(30)]
    seed(dynamodb, mine + expired + others)

    def small_pages(real, **kwargs):
        return real(**kwargs, Limit=25)

    spy.stubs["query"] = small_pages
    spy.calls.clear()

    live = list(dynamodb.for_instance("host-a"))
    assert sorted(ids(live)) == sorted(ids(mine))
    assert len(live) == len(set(ids(live)))
    assert sorted(live, key=str) == sorted(mine, key=str)  # whole records, not just ids
    queries = spy.kwargs("query")
    assert len(queries) == 5  # 120 items, 25 a page
    assert {q["IndexName"] for q in queries} == {"by_instance"}
    assert "scan" not in spy.operations()

    everything = list(dynamodb.for_instance("host-a", include_expired=True))
    assert sorted(ids(everything)) == sorted(ids(mine + expired))


def test_counts_for_one_tenant_is_a_query_of_its_index(dynamodb, spy):
    dynamodb.counts(tenant="acme")
    assert spy.operations() == ["query"]
    assert spy.kwargs("query")[0]["IndexName"] == "by_tenant"


# --- async twins ----------------------------------------------------------------------------


def test_async_twins_run_on_the_registry_threads(dynamodb, spy):
    async def scenario():
        await dynamodb.aregister(conn("c-1"))
        await dynamodb.aregister(conn("c-2"))
        await dynamodb.aget("c-1")
        await dynamodb.arefresh("c-1", NOW + 9000)
        await dynamodb.arefresh("nope", NOW + 9000)
        await dynamodb.aderegister("c-2")
        await dynamodb.aderegister_many(["c-1", "c-3"])

    asyncio.run(scenario())

    threads = {thread for _, _, thread in spy.calls}
    assert len(spy.calls) == 7
    assert all(t.startswith("registry") for t in threads), threads


# --- batches (coalesced registrations and deregistrations) -----------------------------


def test_register_batch_writes_every_item_in_one_call(dynamodb, spy):
    records = [conn(f"c{i}") for i in range(10)]
    assert dynamodb.register_batch(records) == [None] * 10
    assert spy.operations() == ["batch_write_item"]
    assert {c.connection_id for c in dynamodb.for_tenant("acme").connections} == {
        f"c{i}" for i in range(10)
    }


def test_register_batch_of_one_is_a_plain_put(dynamodb, spy):
    assert dynamodb.register_batch([conn("c1")]) == [None]
    assert spy.operations() == ["put_item"]


def test_register_batch_of_more_than_25_takes_several_calls(dynamodb, spy):
    assert dynamodb.register_batch([conn(f"c{i}") for i in range(30)]) == [None] * 30
    assert spy.operations() == ["batch_write_item", "batch_write_item"]
    assert item_count(dynamodb) == 30


def test_registrations_a_batch_leaves_unprocessed_fail_alone(dynamodb, monkeypatch):
    real = dynamodb.client.batch_write_item

    def leaves_b(RequestItems):
        requests = RequestItems[dynamodb.table_name]
        kept = [r for r in requests if r["PutRequest"]["Item"]["connection_id"]["S"] == "b"]
        if written := [r for r in requests if r not in kept]:
            real(RequestItems={dynamodb.table_name: written})
        return {"UnprocessedItems": {dynamodb.table_name: kept}}

    monkeypatch.setattr(dynamodb.client, "batch_write_item", leaves_b)
    monkeypatch.setattr("realtime.registry.dynamodb.batches.time.sleep", lambda seconds: None)
    outcomes = dynamodb.register_batch([conn("a"), conn("b"), conn("c")])
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], RegistryUnavailable)
    assert outcomes[1].reason == "unprocessed"
    assert dynamodb.get("a") is not None and dynamodb.get("c") is not None
    assert dynamodb.get("b") is None


def test_deregister_batch_deletes_in_one_call(dynamodb, spy):
    seed(dynamodb, [conn(f"c{i}") for i in range(10)])
    spy.calls.clear()
    assert dynamodb.deregister_batch([f"c{i}" for i in range(10)]) == [None] * 10
    assert spy.operations() == ["batch_write_item"]
    assert item_count(dynamodb) == 0


def test_concurrent_async_registrations_are_coalesced(dynamodb, spy):
    async def scenario():
        await asyncio.gather(*(dynamodb.aregister(conn(f"c{i}")) for i in range(50)))
        await asyncio.gather(*(dynamodb.aderegister(f"c{i}") for i in range(50)))

    asyncio.run(scenario())
    assert item_count(dynamodb) == 0
    assert len(spy.calls) < 20  # instead of 100 single calls
