"""Whether this server process is draining: shutting down, and no longer taking connections.

The shutdown path calls `start_draining()` first thing; /readyz then answers 503 so that the
load balancer stops sending new clients here while the open ones are closed and deregistered.
There is no way back: a draining process exits.

A `threading.Event`, so that any thread (a signal handler, the registry's threads) may set or
read it.
"""

import threading

__all__ = ["is_draining", "start_draining"]

_draining = threading.Event()


def start_draining() -> None:
    """Mark this process as draining. Idempotent."""
    _draining.set()


def is_draining() -> bool:
    """True once `start_draining` was called in this process."""
    return _draining.is_set()
