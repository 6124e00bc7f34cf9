"""The benchmark's parts work: bench.load's scenarios against bench.reference_server.

Not a measurement (the suite never runs the benchmark): tiny numbers, on the fake DynamoDB
endpoint, checking the shape of what bench.load reports and that bench.run can tabulate it.
"""

import time

import pytest

from bench import run

pytestmark = pytest.mark.e2e


def positive(value) -> bool:
    return isinstance(value, (int, float)) and value > 0


@pytest.fixture(scope="module")
def endpoint():
    endpoint = run.Endpoint("fake", latency_ms=1).start()
    yield endpoint
    endpoint.stop()


@pytest.fixture(scope="module")
def reference(endpoint):
    cfg = run.Config()
    with run.running(run.reference(cfg).make(endpoint.url)) as process:
        yield process


def test_load_scenarios_against_the_reference_server(endpoint, reference):
    cfg = run.Config.quick_run(settle_seconds=0.2)
    watched = [endpoint.process.process.pid]
    endpoint.reset_stats()

    setup = run.run_setup(reference, cfg, seconds=0.5, concurrency=5, watched=watched)
    assert setup["scenario"] == "setup"
    assert setup["failure_count"] == 0, setup["failures"]
    assert setup["connections"] == setup["attempts"] > 0
    assert positive(setup["connections_per_second"])
    assert positive(setup["server_cpu_ms_per_connection"])
    latency = setup["time_to_connected"]
    assert latency["samples"] == setup["connections"]
    assert 0 < latency["p50_ms"] <= latency["p99_ms"] <= latency["max_ms"]

    cfg.echo_connections, cfg.echo_seconds, cfg.echo_warmup = 5, 0.5, 0.1
    echo = run.run_echo(reference, cfg, watched=watched)
    assert echo["failure_count"] == 0, echo["failures"]
    assert echo["connections"] == 5
    assert echo["unexpected_replies"] == 0
    assert positive(echo["messages_per_second"])
    assert echo["round_trip"]["samples"] == echo["messages"] > 0
    assert positive(echo["round_trip"]["p99_ms"])
    assert positive(echo["server_cpu_us_per_message"])

    hold = run.run_hold(reference, 20, cfg, endpoint)
    assert hold["failure_count"] == 0, hold["failures"]
    assert hold["connections"] == 20
    assert hold["released_by"] == "stdin"
    assert hold["lost_while_idle"] == 0
    assert positive(hold["server_rss_holding_kib"])
    assert hold["rss_per_connection_kib"] is not None
    assert hold["registry_items_holding"] == 20
    assert hold["registry_items_after_close"] == 0
    assert hold["registry_exact"] is True

    ping = run.Load(
        "ping",
        reference.port,
        ["--connections", "4", "--interval", "0.1", "--duration", "0.6"],
    ).result(timeout=30)
    assert ping["failure_count"] == 0, ping["failures"]
    assert ping["unexpected_replies"] == 0
    assert ping["pings"] >= 4 * 4
    assert positive(ping["connection_seconds"])

    # The seed's design: one write per ping, and one item written and deleted per connection.
    deadline = time.monotonic() + 10
    while True:  # a handler deletes its item after the client saw the close
        stats = endpoint.stats()
        total, per_operation = run.write_count(stats)
        if per_operation["DeleteItem"] >= per_operation["PutItem"] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert per_operation["UpdateItem"] == ping["pings"]
    assert per_operation["PutItem"] == per_operation["DeleteItem"] > 0
    assert total == sum(per_operation.values())

    # bench.run tabulates what bench.load reported (here the same server in both columns).
    figures = {
        "label": "reference",
        "setup": setup,
        "setup_unloaded": setup,
        "setup_registry_off": setup,
        "echo": echo,
        "hold": {str(size): hold for size in cfg.hold_sizes},
    }
    table = run.render({"label": "smoke", "servers": {"ours": figures, "reference": figures}}, cfg)
    assert "setup rate" in table and "1.00" in table
