"""What a registry call can fail with; callers tell an outage from an answer by these."""

__all__ = ["InvalidCursor", "LeaseLost", "QuotaExceeded", "RegistryError", "RegistryUnavailable"]


class RegistryError(Exception):
    """A registry call failed."""


class RegistryUnavailable(RegistryError):
    """The store could not be reached or refused the call: try again later.

    `reason` says why, for callers that explain it to a person: "no_credentials",
    "unreachable" (no connection to the endpoint), "timeout" (no answer in time), otherwise
    DynamoDB's error code or the botocore exception's name.
    """

    def __init__(self, message: str, *, reason: str = ""):
        super().__init__(message)
        self.reason = reason


class QuotaExceeded(RegistryError):
    """The tenant already has its WS_TENANT_MAX_CONNECTIONS connections open."""


class InvalidCursor(RegistryError):
    """A pagination cursor that this registry did not issue for this query."""


class LeaseLost(RegistryError):
    """This instance's lease was taken over (or is gone): the fleet wrote its connections off."""
