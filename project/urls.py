from django.contrib import admin
from django.urls import include, path

from realtime.operate import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("realtime.operate.api.urls")),
    # Load balancers and Prometheus; see realtime/operate/health.py.
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.prometheus_metrics, name="metrics"),
]
