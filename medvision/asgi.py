import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medvision.settings")
django_asgi_app = get_asgi_application()  # sets up Django before the routing imports models

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from .routing import websocket_urlpatterns  # noqa: E402
from .ws_auth import WebSocketAuthStack  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": WebSocketAuthStack(URLRouter(websocket_urlpatterns)),
    }
)

if settings.CELERY_EMBEDDED_WORKER:
    # Embedded profile: the worker lives in this process (see medvision.embedded_worker).
    from .embedded_worker import start_embedded_worker

    start_embedded_worker()
