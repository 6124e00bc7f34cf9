"""The connection registry: a contract (base.py) and its backends (dynamodb, disabled).

Callers import the contract and its errors from here; backends.py chooses the backend.
"""

from realtime.registry.base import ConnectionRegistry, Page, TableReport
from realtime.registry.errors import (
    InvalidCursor,
    LeaseLost,
    QuotaExceeded,
    RegistryError,
    RegistryUnavailable,
)

__all__ = [
    "ConnectionRegistry",
    "InvalidCursor",
    "LeaseLost",
    "Page",
    "QuotaExceeded",
    "RegistryError",
    "RegistryUnavailable",
    "TableReport",
]
