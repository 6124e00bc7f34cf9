"""Realtime: a WebSocket server with an exact DynamoDB connection registry."""

# Shown to operators with each instance (GET /api/instances), so that a rolling deploy's
# progress is visible.
__version__ = "1.1.0"
