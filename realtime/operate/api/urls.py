"""URLs of the management API, under /api/ (described in openapi.json)."""

from django.urls import path, re_path

from realtime.operate.api import views

urlpatterns = [
    path("connections", views.connections, name="api-connections"),
    path("connections/<str:connection_id>", views.connection, name="api-connection"),
    path(
        "connections/<str:connection_id>/messages",
        views.connection_messages,
        name="api-connection-messages",
    ),
    path("broadcasts", views.broadcasts, name="api-broadcasts"),
    path("stats", views.stats, name="api-stats"),
    path("instances", views.instances, name="api-instances"),
    path("tokens", views.tokens, name="api-tokens"),
    path("openapi.json", views.openapi_document, name="api-openapi"),
    # Last: anything else under /api/ is a JSON 404 (and no APPEND_SLASH redirect).
    re_path(r"^", views.not_found),
]
