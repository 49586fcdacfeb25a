import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medvision.settings")
django_asgi_app = get_asgi_application()  # sets up Django before the routing imports models

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from . import daphne_limits  # noqa: E402
from .asgi_errors import UnreadableRequestMiddleware  # noqa: E402
from .body_limits import BodyLimitMiddleware  # noqa: E402
from .routing import websocket_urlpatterns  # noqa: E402
from .ws_auth import WebSocketAuthStack  # noqa: E402

daphne_limits.install()  # refuse oversized bodies as their headers arrive, before daphne buffers them

application = ProtocolTypeRouter(
    {
        # Oversized bodies are refused before Django reads (and spools) them.
        "http": UnreadableRequestMiddleware(BodyLimitMiddleware(django_asgi_app)),
        "websocket": WebSocketAuthStack(URLRouter(websocket_urlpatterns)),
    }
)

if settings.CELERY_EMBEDDED_WORKER:
    # Embedded profile: the worker lives in this process (see medvision.embedded_worker).
    from .embedded_worker import start_embedded_worker

    start_embedded_worker()
