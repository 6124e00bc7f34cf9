"""The fleet's figures at the default lease, measured end to end: `python -m bench.fleet`.

Two daphne processes share moto's server and Redis (127.0.0.1:6379, or --redis), with the
default INSTANCE_HEARTBEAT_SECONDS and INSTANCE_LEASE_SECONDS unless given. Four scenarios,
each on a fresh table and fresh processes:

- crash: `kill -9` of an instance holding --clients connections; seconds until its
  connections leave the other instance's API answers, and until their items leave the table;
  whether the survivor's connections ever left.
- quota: the same crash with its tenant at WS_TENANT_MAX_CONNECTIONS; seconds until a new
  client of that tenant is accepted by the survivor.
- stall: SIGSTOP of an instance for --stall seconds with a send aimed at one of its
  connections meanwhile; the send's answer, and afterwards whether every open socket has its
  item and every item its socket.
- outage: DynamoDB cut off from the whole fleet (a TCP proxy turned black hole) for
  --outage seconds; afterwards, whether every client is still open and listed, and whether
  anyone was fenced or reaped.

Prints one table; --json prints the raw results.
"""

import argparse
import contextlib
import itertools
import json
import signal
import time
import urllib.error
import urllib.request

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from bench.processes import daphne_server, moto_server, server_env
from bench.tcp_proxy import TcpProxy
from realtime.core.leases import LEASE_KEY_PREFIX
from realtime.registry.dynamodb import make_client

TOKEN = "bench-fleet-token-0123456789abcdef"
_tables = itertools.count()


class Instance:
    def __init__(self, endpoint: str, table: str, redis: str, **env: str):
        self.process = daphne_server(
            server_env(endpoint, table, REDIS_URL=redis, API_TOKENS=TOKEN, **env)
        ).start()

    @property
    def port(self) -> int:
        return self.process.port

    def open_client(self, tenant: str = "bench"):
        ws = connect(
            f"ws://127.0.0.1:{self.port}/?tenant={tenant}&deployment_id=fleet&connection_type=c",
            legacy=True,
            open_timeout=10,
        )
        first = json.loads(ws.recv(timeout=10))
        if first["type"] != "connected":
            ws.close()
            return None, first
        return ws, first

    def api(self, method: str, path: str, body=None) -> tuple[int, dict]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def listed(self, tenant: str = "bench") -> set[str]:
        status, body = self.api("GET", f"/api/connections?tenant={tenant}&limit=1000")
        return {c["connection_id"] for c in body["connections"]} if status == 200 else set()


class Table:
    def __init__(self, endpoint: str):
        self.name = f"fleet_{next(_tables)}_{int(time.time())}"
        self.client = make_client(
            region="us-east-1",
            endpoint_url=endpoint,
            access_key_id="testing",
            secret_access_key="testing",
        )

    def connection_ids(self) -> set[str]:
        ids, kwargs = set(), {"TableName": self.name, "ProjectionExpression": "connection_id"}
        while True:
            response = self.client.scan(**kwargs)
            ids.update(item["connection_id"]["S"] for item in response["Items"])
            if "LastEvaluatedKey" not in response:
                return {i for i in ids if not i.startswith((LEASE_KEY_PREFIX, "quota#"))}
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def until(predicate, timeout: float, interval: float = 0.25) -> float | None:
    """Seconds until `predicate()` held, or None if it never did within `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(interval)
    return None


def still_open(ws, connection_id: str) -> bool:
    try:
        ws.send('{"type": "info"}')
        while True:
            message = json.loads(ws.recv(timeout=5))
            if message["type"] == "info":
                return message["connection_id"] == connection_id
    except (ConnectionClosed, TimeoutError):
        return False


def crash(args, moto_url: str, env: dict) -> dict:
    table = Table(moto_url)
    doomed = Instance(moto_url, table.name, args.redis, **env)
    survivor = Instance(moto_url, table.name, args.redis, **env)
    try:
        lost = {
            first["connection_id"]
            for _, first in (doomed.open_client() for _ in range(args.clients))
        }
        kept = [survivor.open_client() for _ in range(2)]
        kept_ids = {first["connection_id"] for _, first in kept}
        assert survivor.listed() == lost | kept_ids
        survivor_left = []
        doomed.process.kill()
        killed = time.monotonic()

        def answers_agree() -> bool:
            listed = survivor.listed()
            if not kept_ids <= listed:
                survivor_left.append(kept_ids - listed)
            return not listed & lost

        left_answers = until(answers_agree, timeout=120)
        until(lambda: not table.connection_ids() & lost, timeout=120)
        left_table = time.monotonic() - killed
        return {
            "clients": args.clients,
            "left_answers_seconds": left_answers,
            "left_table_seconds": left_table,  # from the kill, as left_answers
            "survivor_connections_ever_left": bool(survivor_left),
        }
    finally:
        survivor.process.stop()


def quota(args, moto_url: str, env: dict) -> dict:
    table = Table(moto_url)
    env = {**env, "WS_TENANT_MAX_CONNECTIONS": "3"}
    doomed = Instance(moto_url, table.name, args.redis, **env)
    survivor = Instance(moto_url, table.name, args.redis, **env)
    try:
        held = [doomed.open_client() for _ in range(3)]
        _, refused = survivor.open_client()
        doomed.process.kill()
        admitted: list = []

        def accepted() -> bool:
            ws, _ = survivor.open_client()
            if ws is not None:
                admitted.append(ws)
            return ws is not None

        seconds = until(accepted, timeout=120, interval=0.5)
        return {
            "refused_before": refused.get("code"),
            "admitted_after_seconds": seconds,
            "held": len(held),
        }
    finally:
        survivor.process.stop()


def stall(args, moto_url: str, env: dict) -> dict:
    table = Table(moto_url)
    stalled = Instance(moto_url, table.name, args.redis, **env)
    other = Instance(moto_url, table.name, args.redis, **env)
    try:
        clients = [stalled.open_client() for _ in range(args.clients)]
        ids = {first["connection_id"]: ws for ws, first in clients}
        target = next(iter(ids))
        stalled.process.signal(signal.SIGSTOP)
        started = time.monotonic()
        try:
            status, body = other.api("POST", f"/api/connections/{target}/messages", {"data": 1})
            time.sleep(max(0.0, args.stall - (time.monotonic() - started)))
        finally:
            stalled.process.signal(signal.SIGCONT)
        time.sleep(5)  # a renewal or two after waking
        open_ids = {cid for cid, ws in ids.items() if still_open(ws, cid)}
        items = table.connection_ids()
        return {
            "stall_seconds": args.stall,
            "send_during_stall": f"{status} {body.get('code', 'delivered')}",
            "open_sockets": len(open_ids),
            "items": len(items),
            "open_socket_without_item": len(open_ids - items),
            "item_without_socket": len(items - open_ids),
        }
    finally:
        other.process.stop()
        stalled.process.stop()


def outage(args, moto_url: str, env: dict, moto_port: int) -> dict:
    table = Table(moto_url)
    proxy = TcpProxy(moto_port)
    servers = []
    try:
        servers = [Instance(proxy.url, table.name, args.redis, **env) for _ in range(2)]
        clients = {}
        for server in servers:
            for _ in range(args.clients):
                ws, first = server.open_client()
                clients[first["connection_id"]] = ws
        proxy.cut()
        time.sleep(args.outage)
        open_during = sum(still_open(ws, cid) for cid, ws in clients.items())
        proxy.restore()
        time.sleep(2 * float(env.get("INSTANCE_LEASE_SECONDS", 15)))
        open_after = sum(still_open(ws, cid) for cid, ws in clients.items())
        listed = servers[0].listed()
        output = "\n".join(server.process.output for server in servers)
        return {
            "outage_seconds": args.outage,
            "clients": len(clients),
            "open_at_end_of_outage": open_during,
            "open_after": open_after,
            "listed_after": len(listed & set(clients)),
            "items_after": len(table.connection_ids() & set(clients)),
            "fenced": output.count("instance.lease_lost"),
            "reaped": output.count("instance.taken_over"),
        }
    finally:
        for server in servers:
            server.process.stop()
        proxy.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--stall", type=float, default=8.0)
    parser.add_argument("--outage", type=float, default=40.0)
    parser.add_argument(
        "--heartbeat", type=float, help="INSTANCE_HEARTBEAT_SECONDS (default: the server's)"
    )
    parser.add_argument(
        "--lease", type=float, help="INSTANCE_LEASE_SECONDS (default: the server's)"
    )
    parser.add_argument("--only", choices=["crash", "quota", "stall", "outage"], action="append")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    env = {}
    if args.heartbeat:
        env["INSTANCE_HEARTBEAT_SECONDS"] = str(args.heartbeat)
    if args.lease:
        env["INSTANCE_LEASE_SECONDS"] = str(args.lease)
    moto = moto_server().start()
    moto_url = f"http://127.0.0.1:{moto.port}"
    results = {}
    try:
        chosen = args.only or ["crash", "quota", "stall", "outage"]
        for name in chosen:
            print(f"... {name}", flush=True)
            if name == "outage":
                results[name] = outage(args, moto_url, env, moto.port)
            else:
                results[name] = {"crash": crash, "quota": quota, "stall": stall}[name](
                    args, moto_url, env
                )
    finally:
        with contextlib.suppress(Exception):
            moto.stop()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for name, figures in results.items():
        print(f"{name}:")
        for key, value in figures.items():
            shown = f"{value:.1f}" if isinstance(value, float) else value
            print(f"  {key:34} {shown}")


if __name__ == "__main__":
    main()
