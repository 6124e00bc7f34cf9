"""Middleware of the HTTP side that guards what reaches Django's views."""

import logging

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

from realtime.core.logs import event

__all__ = ["refuse_unknown_hosts"]

logger = logging.getLogger(__name__)

_SHOWN_HOST_LENGTH = 100  # of a Host header the client chose: enough to recognise it


def refuse_unknown_hosts(get_response):
    """Middleware, right after the probes: a Host outside ALLOWED_HOSTS gets 400 and one
    warning line.

    Django would raise DisallowedHost from deep inside the request and log it as an ERROR with
    a full traceback, plus a second line for the 400: scanners and misconfigured load
    balancers send such requests all day, and a traceback per request buries real errors.
    """

    async def middleware(request: HttpRequest) -> HttpResponse:
        try:
            request.get_host()
        except DisallowedHost:
            host = request.META.get("HTTP_HOST", "")[:_SHOWN_HOST_LENGTH]
            logger.warning(event("http.host_refused", host=host, path=request.path[:200]))
            response = HttpResponseBadRequest(b"Bad Request: this Host is not served here\n")
            response._has_been_logged = True  # Django's mark: no second "Bad Request" line
            return response
        return await get_response(request)

    return middleware


refuse_unknown_hosts.async_capable = True
refuse_unknown_hosts.sync_capable = False
