"""Rolling restarts, end to end: a draining instance closes its clients a slice at a time over
DRAIN_SPREAD_SECONDS, under daphne and uvicorn, and the registry stays exact throughout.

From the first moment of the drain /readyz answers 503 and new handshakes get 1013; every
client still gets 1001, its item is deleted soon after its close (not all at the end), and
the lease goes last. The figures at 2,000 clients are measured by
`python -m bench.rolling_restart` (docs/performance.md, "Rolling restarts").
"""

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from websockets.exceptions import ConnectionClosed

from realtime.core.leases import lease_key
from tests.e2e.conftest import item_ids, receive, wait_until
from tests.processes import ROOT, base_env

CLIENTS = 60
SPREAD = 3.0
DRAIN = {"DRAIN_SECONDS": "8", "DRAIN_SPREAD_SECONDS": str(SPREAD)}


class Watched:
    """A client whose close (time and code) a thread of its own records as it arrives."""

    def __init__(self, ws, connection_id: str):
        self.ws = ws
        self.connection_id = connection_id
        self.closed_at: float | None = None
        self.code: int | None = None
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        try:
            while True:
                self.ws.recv(timeout=30)
        except ConnectionClosed as closed:
            self.code = closed.rcvd.code if closed.rcvd else None
        except TimeoutError:
            pass
        self.closed_at = time.monotonic()

    def join(self) -> None:
        self._thread.join(35)


def watch(server, count: int) -> list[Watched]:
    return [Watched(*server.open_client()) for _ in range(count)]


def still_open(clients: list[Watched]) -> int:
    return sum(1 for client in clients if client.closed_at is None)


def readyz(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def lease_item(registry, instance_id: str):
    key = {"connection_id": {"S": lease_key(instance_id)}}
    return registry.client.get_item(TableName=registry.table_name, Key=key).get("Item")


def instance_of(server) -> str:
    line = next(line for line in server.process.lines if "instance.joined" in line)
    return line.split("instance_id=")[1].split()[0]


@pytest.fixture(params=["daphne", "uvicorn"])
def start(request, start_server, start_uvicorn):
    return {"daphne": start_server, "uvicorn": start_uvicorn}[request.param]


def test_the_drain_spreads_the_closes_and_keeps_the_registry_exact(start, registry):
    server = start(**DRAIN)
    clients = watch(server, CLIENTS)
    instance_id = instance_of(server)
    assert len(item_ids(registry)) == CLIENTS

    signalled = time.monotonic()
    server.process.signal(signal.SIGTERM)

    # At once: not ready, and new clients are told to come back later.
    assert readyz(server.port) == (503, {"status": "draining"})
    late = server.connect()
    assert receive(late)["code"] == "draining"
    with pytest.raises(ConnectionClosed) as refused:
        late.recv(timeout=5)
    assert refused.value.rcvd.code == 1013

    # Half way through: some clients closed and their items gone, the others open and
    # registered; the items follow the closes within a couple of slices.
    time.sleep(SPREAD / 2 - (time.monotonic() - signalled))
    open_before = still_open(clients)
    items = len(item_ids(registry))
    open_after = still_open(clients)
    assert 0 < open_after <= open_before < CLIENTS
    slack = 2 * CLIENTS / (SPREAD / 0.1)  # two slices in flight
    assert open_after - slack <= items <= open_before + slack
    assert lease_item(registry, instance_id) is not None  # still renewed while it drains

    for client in clients:
        client.join()
    assert [client.code for client in clients] == [1001] * CLIENTS
    closes = sorted(client.closed_at - signalled for client in clients)
    # Over the window, evenly: not in one burst, none after the window (plus delivery).
    assert closes[-1] - closes[0] >= SPREAD * 0.7
    assert closes[-1] <= SPREAD + 2
    first_half = sum(1 for t in closes if t - closes[0] < SPREAD / 2)
    assert CLIENTS * 0.3 <= first_half <= CLIENTS * 0.7

    server.process.process.wait(15)
    assert server.process.wait_for_output(rf"server\.drained closed={CLIENTS} left_to_ttl=0")
    assert item_ids(registry) == set()
    assert lease_item(registry, instance_id) is None  # released last, once nothing was left


def test_without_a_spread_every_client_is_closed_at_once(start_server, registry):
    server = start_server(DRAIN_SECONDS="8", DRAIN_SPREAD_SECONDS="0")
    clients = watch(server, CLIENTS)
    signalled = time.monotonic()
    server.process.signal(signal.SIGTERM)
    for client in clients:
        client.join()
    assert [client.code for client in clients] == [1001] * CLIENTS
    closes = [client.closed_at - signalled for client in clients]
    assert max(closes) - min(closes) < 1.0
    assert server.process.process.wait(15) == 0
    assert item_ids(registry) == set()


def test_clients_move_to_the_survivor_and_the_table_lists_each_once(start_server, redis_url):
    survivor = start_server(REDIS_URL=redis_url)
    leaving = start_server(REDIS_URL=redis_url, **DRAIN)
    registry = survivor.registry
    clients = watch(leaving, CLIENTS)
    reconnected: list[tuple] = []  # (websocket, connection id), held open until the end

    def reconnect(client: Watched) -> None:
        # What a client does on 1001: reconnect, to the instance the balancer offers.
        client.join()
        reconnected.append(survivor.open_client())

    threads = [threading.Thread(target=reconnect, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    leaving.process.signal(signal.SIGTERM)
    for thread in threads:
        thread.join(40)
    assert leaving.process.process.wait(15) == 0

    assert [client.code for client in clients] == [1001] * CLIENTS
    moved = {connection_id for _, connection_id in reconnected}
    assert len(moved) == CLIENTS
    # Exactly the new connections: none of the old ones left behind, none listed twice.
    assert wait_until(lambda: item_ids(registry) == moved, timeout=5)
    for ws, _ in reconnected:
        ws.close()
    assert wait_until(lambda: item_ids(registry) == set())


def test_the_benchmark_runs_and_reports_an_exact_table(redis_url):
    # A smoke run of `python -m bench.rolling_restart` (not a measurement): tiny numbers.
    tiny = ["--clients", "40", "--wave", "20", "--spreads", "0", "1", "--drain", "2"]
    result = subprocess.run(
        [sys.executable, "-m", "bench.rolling_restart", *tiny, "--redis", redis_url, "--json"],
        cwd=ROOT,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    reports = json.loads(result.stdout[result.stdout.index("[") :])
    assert [r["spread_seconds"] for r in reports] == [0.0, 1.0]
    for report in reports:
        assert report["moved"] == 20
        assert report["all_back_seconds"] is not None
        assert report["close_codes"] == {"1001": 20}
        assert report["drained"] == "server.drained closed=20 left_to_ttl=0"
        assert report["table_items"] == 40
        assert report["peak_accepted_per_second"] > 0
