"""The ASGI application: `daphne project.asgi:application` or `uvicorn project.asgi:application`.

HTTP goes to Django (admin, API, probes); WebSockets on `/` go to the ConnectionConsumer.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
# Django must be set up before anything imports models or the consumers.
django_asgi_app = get_asgi_application()

from realtime.server.adapters import daphne  # noqa: E402
from realtime.server.adapters.lifespan import lifespan  # noqa: E402
from realtime.server.routing import protocol_router, websocket_application  # noqa: E402
from realtime.server.startup import prepare  # noqa: E402

daphne.apply()
prepare()

application = protocol_router(
    {
        "http": django_asgi_app,
        "websocket": websocket_application,
        "lifespan": lifespan,
    }
)
