"""URLs of the management API, under /api/ (described in realtime/openapi.json)."""

from django.urls import path, re_path

from . import api

urlpatterns = [
    path("connections", api.connections, name="api-connections"),
    path("connections/<str:connection_id>", api.connection, name="api-connection"),
    path(
        "connections/<str:connection_id>/messages",
        api.connection_messages,
        name="api-connection-messages",
    ),
    path("broadcasts", api.broadcasts, name="api-broadcasts"),
    path("stats", api.stats, name="api-stats"),
    path("tokens", api.tokens, name="api-tokens"),
    path("openapi.json", api.openapi_document, name="api-openapi"),
    # Last: anything else under /api/ is a JSON 404 (and no APPEND_SLASH redirect).
    re_path(r"^", api.not_found),
]
