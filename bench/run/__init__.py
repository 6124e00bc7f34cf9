"""Our server against the seed's: `python -m bench.run [--endpoint fake|moto|both] [--quick]`.

Starts a DynamoDB endpoint (moto's server, and/or bench.fake_dynamodb, which answers after a
fixed latency), creates the registry table, then starts each server as a process on loopback
and drives it with bench.load, another process:

- ours: `daphne project.asgi:application` (or uvicorn, --server-cmd), as deployed, with
  DEBUG off and no per-connection message rate limit (WS_RATE_PER_SECOND=0);
- the reference: bench.reference_server, the seed's design (`websockets`, boto3 through
  `asyncio.to_thread`, no Django; one DynamoDB write per ping).

For each endpoint it prints one table, ours next to the reference, with ours/reference ratios:

- connection setup: C concurrent clients connect, wait for `connected`, close, for a fixed
  time; connections per second and time to `connected` (from the TCP connect). Also with the
  registry off (REGISTRY_ENABLED=false on both servers), for what the registry costs: a
  second server process with the registry off runs beside the first, and rounds alternate
  between them (the machine's speed drifts within minutes); each side's median round counts;
- echo: N connections in a closed loop (send, await the echo, repeat); messages per second,
  round trip p50/p99, and the server's CPU time per message (from /proc, over the measured
  window only);
- memory: the server's resident set (VmRSS) before and while N idle connections are open,
  the difference divided by N; each N on a freshly started server, after a small warm-up;
- DynamoDB writes per connection-hour for clients that ping every 25 s, on the fake endpoint
  (its /stats counts writes; moto has no such count). An hour is compressed by a factor F
  (--ping-scale, 30 by default): each connection pings every 25/F s for 3600/F s, with our
  server's CONNECTION_TTL_SECONDS and TTL_REFRESH_SECONDS divided by F as well, so that every
  interval that decides a write keeps its ratio to the others and the count maps to an hour at
  the defaults (3600 s, 300 s): writes per connection-hour = all item writes (PutItem,
  UpdateItem, DeleteItem, batch and transaction items) / connections. Both servers run this
  phase at the same time, each against an endpoint of its own.

Everything shares this machine: the server, the load generator and the endpoint compete for
the same cores (`nproc` is in the output), so absolute numbers are this machine's; the ratios
are the point; CPU used meanwhile by other processes is measured and flagged. Raw results go
to bench/results/<timestamp>.json. --quick is a smoke run with small numbers (about a minute,
on the fake endpoint unless --endpoint says otherwise), not a measurement.

The parts, one job each: config.py (what a run measures), endpoint.py (the DynamoDB endpoint),
servers.py (the two servers), load_process.py (bench.load as a child), procfs.py (CPU and
memory from /proc), phases.py (setup, echo, hold), writes.py (writes per connection-hour),
comparison.py (the phases in order), report.py (the table), __main__.py (the command).
"""

from bench.run.comparison import measure_endpoint
from bench.run.config import Config
from bench.run.endpoint import TABLE, Endpoint, write_count
from bench.run.load_process import Load
from bench.run.phases import run_echo, run_hold, run_setup
from bench.run.report import render
from bench.run.servers import ours, reference, running

__all__ = [
    "TABLE",
    "Config",
    "Endpoint",
    "Load",
    "measure_endpoint",
    "ours",
    "reference",
    "render",
    "run_echo",
    "run_hold",
    "run_setup",
    "running",
    "write_count",
]
