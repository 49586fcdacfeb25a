from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/procedures/<uuid:session_id>/voice/", consumers.VoiceRelayConsumer.as_asgi(), name="ws-session-voice"),
]
