"""The names deploy commands give uvicorn: `--ws realtime.uvicorn_protocol:WebSocketProtocol`
and `--http realtime.uvicorn_protocol:HttpProtocol`."""

from realtime.server.adapters.uvicorn import PAUSE_AT, HttpProtocol, WebSocketProtocol

__all__ = ["PAUSE_AT", "HttpProtocol", "WebSocketProtocol"]
