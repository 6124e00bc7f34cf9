"""URLs of the management API, under /api/."""

urlpatterns = []
