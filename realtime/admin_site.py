"""The admin site, with the operator pages for live connections.

INSTALLED_APPS lists `OperatorAdminConfig` in place of `django.contrib.admin`, so that
`admin.site` is an OperatorAdminSite.
"""

from django.contrib.admin import AdminSite
from django.contrib.admin.apps import AdminConfig


class OperatorAdminSite(AdminSite):
    site_header = "Realtime administration"
    site_title = "Realtime"


class OperatorAdminConfig(AdminConfig):
    default_site = "realtime.admin_site.OperatorAdminSite"
