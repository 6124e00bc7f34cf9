"""A WebSocket client over a plain socket, for clients that misbehave on purpose.

Library clients read in the background, answer pings, refuse to send what RFC 6455 forbids and
never stop half way through a frame: a hostile client does all of that. This one writes the
bytes it is told to (frames built by `frame`), reads only when asked, and can shrink its
receive buffer so that a server's unsent data piles up on the server's side.
"""

import base64
import os
import socket
import struct

__all__ = [
    "BINARY",
    "CLOSE",
    "CONTINUATION",
    "PING",
    "PONG",
    "TEXT",
    "frame",
    "handshake",
    "open_raw",
    "read_frame",
]

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def handshake(query: str, *, host: str = "127.0.0.1", extra: str = "") -> bytes:
    """The client's upgrade request for `/?<query>`."""
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET /?{query} HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        f"{extra}\r\n"
    ).encode()


def open_raw(
    port: int, query: str, *, rcvbuf: int | None = None, timeout: float = 10
) -> socket.socket:
    """Connect and upgrade; returns the socket right after the server's 101 response.

    Raises:
        ConnectionError: the server did not switch protocols.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        # Before connect: the window the server may fill is negotiated at the handshake.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    sock.sendall(handshake(query))
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(1)  # byte by byte: nothing after the headers is consumed
        if not chunk:
            raise ConnectionError("closed during the handshake")
        response += chunk
    if not response.startswith(b"HTTP/1.1 101"):
        sock.close()
        raise ConnectionError(response.split(b"\r\n", 1)[0].decode("latin-1"))
    return sock


def frame(
    opcode: int, payload: bytes = b"", *, fin: bool = True, length: int | None = None
) -> bytes:
    """A masked client frame. `length` may announce more payload than is given (to send the
    rest later, or never)."""
    length = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | opcode])
    if length < 126:
        head += bytes([0x80 | length])
    elif length < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", length)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", length)
    mask = os.urandom(4)
    return head + mask + _masked(payload, mask)


def _masked(payload: bytes, mask: bytes) -> bytes:
    if not payload:
        return b""
    # XOR as one big integer: fast enough for the megabytes hostile tests send.
    n = len(payload)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


def _exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """The next frame the server sent: (opcode, payload).

    Raises:
        ConnectionError: the server closed the TCP connection (without a frame).
    """
    first, second = _exactly(sock, 2)
    length = second & 0x7F
    if length == 126:
        length = struct.unpack("!H", _exactly(sock, 2))[0]
    elif length == 127:
        length = struct.unpack("!Q", _exactly(sock, 8))[0]
    return first & 0x0F, _exactly(sock, length)
