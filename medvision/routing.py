"""All WebSocket routes. Each app contributes its own list; the access-matrix test walks this."""

from analysis.routing import websocket_urlpatterns as analysis_ws
from voice.routing import websocket_urlpatterns as voice_ws

websocket_urlpatterns = [*analysis_ws, *voice_ws]
