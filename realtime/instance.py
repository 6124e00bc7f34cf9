"""This server process's identity in the registry.

Every item records the instance that holds its socket, so that operators can list what one
process holds and purge what a dead one left behind. The id is unique per process start:
host name, pid, and random bits (a restarted process with a reused pid is a new instance).
"""

import os
import secrets
import socket

__all__ = ["instance_id"]

_id: tuple[int, str] | None = None


def instance_id() -> str:
    global _id
    pid = os.getpid()
    # Checked against the pid so that a worker forked after import gets an id of its own.
    if _id is None or _id[0] != pid:
        _id = (pid, f"{socket.gethostname()[:64]}-{pid}-{secrets.token_hex(4)}")
    return _id[1]
