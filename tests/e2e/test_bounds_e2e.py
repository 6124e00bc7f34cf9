"""What one hostile client can make a server hold, under daphne and under uvicorn: real servers,
moto's DynamoDB server, and a client that misbehaves on purpose (bench/raw_ws.py).

Every bound answers with its documented close code and error code, deletes the client's item,
and leaves the other connections alone. `python -m bench.abuse` measures the same scenarios
at full size.
"""

import contextlib
import json
import socket
import time

import jwt
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from bench.raw_ws import CLOSE, CONTINUATION, PING, TEXT, frame, handshake, open_raw, read_frame
from tests.api_contract import Api
from tests.e2e.conftest import item_ids, wait_until
from tests.processes import server_env, uvicorn_server

QUERY = "tenant=acme&deployment_id=prod-1&connection_type=client"
SERVERS = ["daphne", "uvicorn"]


@pytest.fixture(params=SERVERS)
def serve(request, start_server, start_uvicorn):
    """Start the server under test (daphne, then uvicorn) with the given environment."""
    return start_server if request.param == "daphne" else start_uvicorn


def connected(sock) -> str:
    opcode, payload = read_frame(sock)
    message = json.loads(payload)
    assert (opcode, message["type"]) == (TEXT, "connected"), message
    return message["connection_id"]


def refused(sock, timeout: float = 10) -> tuple[str | None, int | None, str]:
    """Read to the end: (the last error frame's code, the close code, the close reason)."""
    sock.settimeout(timeout)
    code = None
    try:
        while True:
            opcode, payload = read_frame(sock)
            if opcode == TEXT:
                code = json.loads(payload).get("code", code)
            elif opcode == CLOSE:
                return code, int.from_bytes(payload[:2], "big"), payload[2:].decode()
    except (ConnectionError, OSError):
        return code, None, ""


def test_a_message_over_the_limit_is_refused_as_it_arrives(serve, registry):
    server = serve(WS_MAX_MESSAGE_BYTES="1000")
    bystander, bystander_id = server.open_client()
    sock = open_raw(server.port, QUERY)
    connection_id = connected(sock)
    # The header announces 2 MB; nothing after it is sent, and nothing needs to be.
    sock.sendall(frame(TEXT, b"", length=2_000_000)[:14])
    assert refused(sock) == ("message_too_big", 1009, "message_too_big")
    assert wait_until(lambda: connection_id not in item_ids(registry))
    bystander.send('{"type": "info"}')
    assert json.loads(bystander.recv(timeout=5))["connection_id"] == bystander_id
    assert wait_until(lambda: "reason=message_too_big" in server.process.output)


def test_a_fragmented_message_over_the_limit_is_refused_at_the_fragment_that_crosses_it(
    serve, registry
):
    server = serve(WS_MAX_MESSAGE_BYTES="1000")
    sock = open_raw(server.port, QUERY)
    connection_id = connected(sock)
    sock.sendall(frame(TEXT, b"a" * 600, fin=False))
    sock.sendall(frame(CONTINUATION, b"a" * 600, fin=False))
    assert refused(sock) == ("message_too_big", 1009, "message_too_big")
    assert wait_until(lambda: connection_id not in item_ids(registry))


def test_a_compressed_message_is_bounded_by_its_inflated_size(moto_url, table_name):
    # daphne never negotiates compression; uvicorn does when its deflate option is on (the
    # last of the two flags wins).
    env = server_env(moto_url, table_name, WS_MAX_MESSAGE_BYTES="1000")
    process = uvicorn_server(env, "--ws-per-message-deflate", "true").start()
    try:
        url = f"ws://127.0.0.1:{process.port}/?{QUERY}"
        with connect(url, compression="deflate", open_timeout=10) as ws:
            assert ws.protocol.extensions, "deflate was not negotiated"
            json.loads(ws.recv(timeout=5))
            ws.send(json.dumps({"pad": "a" * 100_000}))  # deflates to a few hundred bytes
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    ws.recv(timeout=5)
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1009, "message_too_big")
    finally:
        process.stop()


def test_a_ping_flood_is_refused_like_a_message_flood(serve, registry):
    server = serve(WS_RATE_PER_SECOND="5", WS_RATE_BURST="5", WS_RATE_ABUSE="3")
    bystander, bystander_id = server.open_client()
    sock = open_raw(server.port, QUERY)
    connection_id = connected(sock)
    sock.sendall(frame(PING, b"x") * 50)
    code, close_code, reason = refused(sock)
    assert (code, close_code, reason) == ("rate_limited", 1008, "rate_limited")
    assert wait_until(lambda: connection_id not in item_ids(registry))
    assert wait_until(lambda: "reason=policy" in server.process.output)
    bystander.send('{"type": "info"}')
    assert json.loads(bystander.recv(timeout=5))["connection_id"] == bystander_id


def test_a_client_that_stops_reading_is_closed_and_its_item_deleted(serve, registry):
    server = serve(WS_MAX_UNSENT_BYTES="200000", WS_RATE_PER_SECOND="0")
    sock = open_raw(server.port, QUERY, rcvbuf=4096)
    connection_id = connected(sock)
    request = frame(TEXT, json.dumps({"type": "x", "pad": "a" * 30_000}).encode())
    deadline = time.monotonic() + 20
    sock.settimeout(1)
    while connection_id in item_ids(registry) and time.monotonic() < deadline:
        try:
            sock.sendall(request * 5)
        except OSError:
            break
    assert wait_until(lambda: connection_id not in item_ids(registry), timeout=10)
    assert wait_until(lambda: "reason=slow_consumer" in server.process.output), [
        line for line in server.process.lines if "connection." in line
    ]
    sock.close()


def test_a_handshake_sent_too_slowly_is_cut_off(serve):
    server = serve(HANDSHAKE_TIMEOUT_SECONDS="1")
    sock = socket.create_connection(("127.0.0.1", server.port))
    request = handshake(QUERY)
    sock.sendall(request[:20])
    started = time.monotonic()
    sock.settimeout(10)
    for byte in request[20:40]:  # a byte every 0.2 s: never idle, never done
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            break
        time.sleep(0.2)
    with contextlib.suppress(ConnectionResetError):
        assert sock.recv(1) == b""
    assert time.monotonic() - started < 5
    sock.close()


def test_one_address_is_capped_in_open_connections(serve):
    server = serve(WS_ADDRESS_MAX_CONNECTIONS="3")
    clients = [server.open_client() for _ in range(3)]
    sock = open_raw(server.port, QUERY)
    assert refused(sock)[:2] == ("too_many_connections", 4429)
    clients[0][0].close()
    assert wait_until(lambda: _accepted(server))


def _accepted(server) -> bool:
    sock = open_raw(server.port, QUERY)
    _opcode, payload = read_frame(sock)
    sock.close()
    return json.loads(payload)["type"] == "connected"


def test_one_address_is_capped_in_handshakes_per_second(serve):
    server = serve(WS_ADDRESS_HANDSHAKE_RATE="0.5", WS_ADDRESS_HANDSHAKE_BURST="3")
    answers = []
    for _ in range(5):
        sock = open_raw(server.port, QUERY)
        _opcode, payload = read_frame(sock)
        answers.append(json.loads(payload).get("code", "connected"))
        sock.close()
    assert answers[:3] == ["connected"] * 3
    assert answers[3:] == ["too_many_handshakes"] * 2


def test_no_token_reaches_the_servers_output_at_any_log_level(serve):
    secret = "tests-token-secret-0123456789abcdef0123"
    api_token = "tests-api-token-0123456789abcdef"
    server = serve(
        WS_AUTH="signed", WS_TOKEN_SECRET=secret, LOG_LEVEL="DEBUG", API_TOKENS=api_token
    )
    tokens = []
    for kind in ("client", "client", "worker"):
        token = jwt.encode(
            {
                "tenant": "acme",
                "deployment_id": "prod-1",
                "connection_type": kind,
                "exp": int(time.time()) + 600,
            },
            secret,
            algorithm="HS256",
        )
        tokens.append(token)
        query = f"tenant=acme&deployment_id=prod-1&connection_type={kind}&token={token}"
        ws, _ = server.open_client(query)
        ws.close()
    # A refused one too: a token that does not match its query.
    ws = server.connect(
        f"tenant=beta&deployment_id=prod-1&connection_type=client&token={tokens[0]}"
    )
    assert json.loads(ws.recv(timeout=5))["code"] == "token_mismatch"
    ws.close()
    status, _, _ = Api(server.port, token=api_token)("GET", "/api/stats")
    assert status == 200
    time.sleep(1)
    output = server.process.output
    assert len(server.process.lines) > 20  # DEBUG: the server said a lot
    for secret_text in (*tokens, *(t.split(".")[2] for t in tokens), api_token):
        assert secret_text not in output


@pytest.mark.parametrize(("size", "status"), [(10_000, None), (20_000, "414")])
def test_over_long_requests_are_answered(serve, size, status):
    server = serve()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(handshake(QUERY + "&pad=" + "a" * size))
    head = b""
    while b"\r\n\r\n" not in head:
        byte = sock.recv(1)
        assert byte, f"closed without an answer after {head!r}"
        head += byte
    status_line = head.split(b"\r\n", 1)[0].decode()
    if status_line.startswith("HTTP/1.1 101"):
        # Under the transport's limits: the server answers with 4400 query_too_long.
        assert refused(sock)[:2] == ("query_too_long", 4400)
    else:
        assert status_line.split()[1] in ("414", status or "414"), status_line
    sock.close()
