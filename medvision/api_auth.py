"""Token issuing for API clients (EHR connectors, capture devices)."""

from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.throttling import AnonRateThrottle

from .safe_json import SafeJSONParser


class LoginRateThrottle(AnonRateThrottle):
    scope = "anon"


class ObtainTokenView(ObtainAuthToken):
    """POST username + password -> ``{"token": ...}``. Failed attempts count towards the
    django-axes lockout, like the login page."""

    throttle_classes = [LoginRateThrottle]
    # ObtainAuthToken names its own parsers; ours refuses over-deep JSON with a 400.
    parser_classes = [FormParser, MultiPartParser, SafeJSONParser]
