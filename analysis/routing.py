from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/procedures/<uuid:session_id>/events/", consumers.SessionEventsConsumer.as_asgi(), name="ws-session-events"),
    path("ws/procedures/<uuid:session_id>/live/", consumers.LiveFramesConsumer.as_asgi(), name="ws-session-live"),
]
