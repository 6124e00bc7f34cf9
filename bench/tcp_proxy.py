"""A TCP proxy on loopback that can cut one process off from a service, as a partition would.

`cut()` turns it into a black hole: bytes in either direction are swallowed, and new
connections are accepted but never reach the upstream, so a client sees its calls time out
(not refused: a partition does not answer). `restore()` resets every connection the hole
held, as a real network's would be after a long partition, and lets new ones through.
"""

import contextlib
import socket
import struct
import threading

__all__ = ["TcpProxy"]

_CHUNK = 65536


class TcpProxy:
    def __init__(self, upstream_port: int, *, upstream_host: str = "127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._cut = threading.Event()
        self._lock = threading.Lock()
        self._held: set[socket.socket] = set()
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True, name="proxy-accept").start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        self._cut.set()

    def restore(self) -> None:
        self._drop_all()
        self._cut.clear()

    def stop(self) -> None:
        self._stopped = True
        self._listener.close()
        self._drop_all()

    def _drop_all(self) -> None:
        with self._lock:
            held, self._held = self._held, set()
        for sock in held:
            try:
                # RST rather than FIN: the peer learns at once that this connection is over.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
            except OSError:
                pass

    def _hold(self, *sockets: socket.socket) -> None:
        with self._lock:
            self._held.update(sockets)

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._hold(client)
            if self._cut.is_set():
                continue  # a black hole: accepted, never answered, dropped at restore()
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self._hold(upstream)
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(source, target), daemon=True, name="proxy-pump"
                ).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(_CHUNK):
                if not self._cut.is_set():
                    target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
