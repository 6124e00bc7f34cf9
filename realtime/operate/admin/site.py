"""The admin site, with the operator pages for live connections.

INSTALLED_APPS lists `OperatorAdminConfig` in place of `django.contrib.admin`, so that
`admin.site` is an OperatorAdminSite. The pages live under /admin/realtime/ (views.py); they
are not ModelAdmins because a connection is a DynamoDB item, not a model, so the site lists
them itself in the admin index and the navigation sidebar.
"""

from django.contrib.admin import AdminSite
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest
from django.urls import path, reverse

APP_LABEL = "realtime"


class OperatorAdminSite(AdminSite):
    site_header = "Realtime administration"
    site_title = "Realtime"
    site_url = None  # no "View site" link: `/` is the WebSocket endpoint, not a page

    def get_urls(self) -> list:
        from realtime.operate.admin import (
            views,  # imported late, as Django's own sites do: apps load this module
        )

        def page(route: str, view, name: str):
            # admin_view: staff only (others go to the login page), CSRF-protected, never cached.
            return path(route, self.admin_view(view), {"admin_site": self}, name=name)

        pages = [
            path(
                f"{APP_LABEL}/",
                self.admin_view(self.app_index),
                {"app_label": APP_LABEL},
                name="realtime_index",
            ),
            page(f"{APP_LABEL}/connections/", views.connection_list, "realtime_connections"),
            page(
                f"{APP_LABEL}/connections/<path:connection_id>/",
                views.connection_detail,
                "realtime_connection",
            ),
            page(f"{APP_LABEL}/tenants/", views.tenant_summary, "realtime_tenants"),
            page(f"{APP_LABEL}/instances/", views.instance_list, "realtime_instances"),
        ]
        # First: the admin's own URLs end with a catch-all.
        return pages + super().get_urls()

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict]:
        """The registered apps, plus "Realtime" (Connections, Tenants, Instances) for staff."""
        app_list = super().get_app_list(request, app_label)
        if app_label in (None, APP_LABEL) and self.has_permission(request):
            app_list.append(self._realtime_app())
            app_list.sort(key=lambda app: app["name"].lower())
        return app_list

    def _realtime_app(self) -> dict:
        def entry(name: str, object_name: str, url_name: str) -> dict:
            # The keys the admin's app_list.html reads for a view-only model.
            return {
                "name": name,
                "object_name": object_name,
                "admin_url": reverse(f"admin:{url_name}", current_app=self.name),
                "add_url": None,
                "view_only": True,
                "perms": {"add": False, "change": False, "delete": False, "view": True},
            }

        return {
            "name": "Realtime",
            "app_label": APP_LABEL,
            "app_url": reverse("admin:realtime_index", current_app=self.name),
            "has_module_perms": True,
            "models": [
                entry("Connections", "Connection", "realtime_connections"),
                entry("Tenants", "Tenant", "realtime_tenants"),
                entry("Instances", "Instance", "realtime_instances"),
            ],
        }


class OperatorAdminConfig(AdminConfig):
    default_site = "realtime.operate.admin.site.OperatorAdminSite"
