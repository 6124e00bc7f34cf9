"""Every close the server can start, as a browser sees it: Debian's chromium, driven by
Playwright, on a page the server itself serves over http, under daphne and under uvicorn.

For each: the close code, the close frame's reason (the refusal's error code, for a refusal),
and `wasClean`, which must be true: browsers and client libraries treat an unclean close as a
network failure and reconnect with backoff, even after a refusal that says not to.
"""

import json
import signal
import time

import pytest
from playwright.sync_api import sync_playwright

from tests.api_contract import Api
from tests.e2e.test_operator_browser import CHROMIUM, CHROMIUM_ARGS
from tests.processes import free_port

pytestmark = pytest.mark.e2e

TOKEN = "browser-api-token-0123456789abcdef"
QUERY = "tenant=acme&deployment_id=prod-1&connection_type=client"

# Opens a WebSocket from the page; the close event lands in window.closes[name].
OPEN = """([name, url, then]) => {
    window.closes = window.closes || {};
    const ws = new WebSocket(url);
    (window.sockets = window.sockets || {})[name] = ws;
    ws.onmessage = (event) => {
        const message = JSON.parse(event.data);
        if (message.type !== "connected") return;
        if (then === "flood") for (let i = 0; i < 200; i++) ws.send('{"type": "x"}');
        if (then === "big") ws.send(JSON.stringify({type: "x", pad: "a".repeat(5000)}));
        if (then === "bye") ws.close(1000, "bye");
        if (then === "hold") window.held = (window.held || 0) + 1;
    };
    ws.onclose = (e) => {
        window.closes[name] = {code: e.code, reason: e.reason, wasClean: e.wasClean};
    };
}"""


@pytest.fixture(params=["daphne", "uvicorn"])
def serve(request, start_server, start_uvicorn):
    return start_server if request.param == "daphne" else start_uvicorn


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Page:
    """A page on one server's origin, opening sockets to it and reading their closes."""

    def __init__(self, browser, server):
        self.server = server
        self.page = browser.new_page()
        self.page.set_default_timeout(15_000)
        self.page.goto(f"http://127.0.0.1:{server.port}/healthz")

    def open(self, name: str, query: str = QUERY, then: str = "") -> None:
        url = f"ws://127.0.0.1:{self.server.port}/?{query}"
        self.page.evaluate(OPEN, [name, url, then])

    def wait_held(self, count: int) -> None:
        self.page.wait_for_function(f"(window.held || 0) >= {count}")

    def closed(self, name: str) -> dict:
        self.page.wait_for_function(f"window.closes && window.closes[{json.dumps(name)}]")
        return self.page.evaluate(f"window.closes[{json.dumps(name)}]")


def clean(code: int, reason: str = "") -> dict:
    return {"code": code, "reason": reason, "wasClean": True}


def test_closes_of_an_open_server(serve, browser):
    server = serve(
        API_TOKENS=TOKEN,
        WS_TENANT_MAX_CONNECTIONS="1",
        WS_RATE_PER_SECOND="5",
        WS_RATE_BURST="5",
        WS_RATE_ABUSE="3",
        WS_MAX_MESSAGE_BYTES="1000",
        DRAIN_SECONDS="10",
        DRAIN_SPREAD_SECONDS="3",
    )
    page = Page(browser, server)
    page.open("invalid_query", "deployment_id=prod-1&connection_type=client")
    page.open("first_of_tenant", "tenant=full&deployment_id=d&connection_type=c", then="hold")
    page.wait_held(1)
    page.open("over_quota", "tenant=full&deployment_id=d&connection_type=c")
    page.open("flood", "tenant=flood&deployment_id=d&connection_type=c", then="flood")
    page.open("big", "tenant=big&deployment_id=d&connection_type=c", then="big")
    page.open("bye", "tenant=bye&deployment_id=d&connection_type=c", then="bye")
    page.open("operator", "tenant=op&deployment_id=d&connection_type=c", then="hold")
    # Enough open sockets that the drain's spread (a slice per tenth of a second) is still
    # under way when the late handshake arrives.
    for i in range(30):
        page.open(f"held_{i}", f"tenant=held-{i}&deployment_id=d&connection_type=c", then="hold")
    page.wait_held(32)

    assert page.closed("invalid_query") == clean(4400, "missing_parameter")
    assert page.closed("over_quota") == clean(4429, "over_quota")
    assert page.closed("flood") == clean(1008, "rate_limited")
    assert page.closed("big") == clean(1009, "message_too_big")
    assert page.closed("bye") == clean(1000, "bye")  # the client's own, echoed

    api = Api(server.port, token=TOKEN)
    status, _, body = api("GET", "/api/connections?tenant=op")
    (operated,) = body["connections"]
    status, _, _ = api("DELETE", f"/api/connections/{operated['connection_id']}", {"code": 4321})
    assert status == 200
    assert page.closed("operator") == clean(4321)

    # Shutdown: the drain closes open sockets with 1001 over its spread, and refuses new
    # handshakes with 1013 meanwhile.
    server.process.signal(signal.SIGTERM)
    time.sleep(0.3)
    page.open("draining")
    assert page.closed("draining") == clean(1013, "draining")
    assert page.closed("first_of_tenant") == clean(1001)
    for i in range(30):
        assert page.closed(f"held_{i}") == clean(1001)


def test_refusals_of_who_may_connect(serve, browser):
    signed = serve(WS_AUTH="signed", WS_TOKEN_SECRET="browser-token-secret-0123456789abcdef")
    page = Page(browser, signed)
    page.open("no_token")
    assert page.closed("no_token") == clean(4401, "token_missing")

    origins = serve(WS_ALLOWED_ORIGINS="https://app.example.com")
    page = Page(browser, origins)
    page.open("other_origin")
    assert page.closed("other_origin") == clean(4403, "origin_not_allowed")


def test_an_unreachable_registry_refuses_with_1013(serve, browser):
    server = serve(
        DYNAMODB_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}", DYNAMODB_MAX_ATTEMPTS="1"
    )
    page = Page(browser, server)
    page.open("unavailable")
    assert page.closed("unavailable") == clean(1013, "registry_unavailable")
