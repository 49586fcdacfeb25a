"""Token issuing for API clients (EHR connectors, capture devices)."""

from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.throttling import AnonRateThrottle


class LoginRateThrottle(AnonRateThrottle):
    scope = "anon"


class ObtainTokenView(ObtainAuthToken):
    """POST username + password -> ``{"token": ...}``. Failed attempts count towards the
    django-axes lockout, like the login page."""

    throttle_classes = [LoginRateThrottle]
