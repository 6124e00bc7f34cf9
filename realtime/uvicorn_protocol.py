"""The name deploy commands give uvicorn: `--ws realtime.uvicorn_protocol:WebSocketProtocol`."""

from realtime.server.adapters.uvicorn import PAUSE_AT, WebSocketProtocol

__all__ = ["PAUSE_AT", "WebSocketProtocol"]
