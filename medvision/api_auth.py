"""Token issuing for API clients (EHR connectors, capture devices)."""

from collections.abc import Mapping

from rest_framework import exceptions
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.throttling import AnonRateThrottle

from .api_contract import StrictQueryParamsMixin
from .safe_json import SafeJSONParser


class LoginRateThrottle(AnonRateThrottle):
    scope = "anon"


class ObtainTokenView(StrictQueryParamsMixin, ObtainAuthToken):
    """POST username + password -> ``{"token": ...}``. Failed attempts count towards the
    django-axes lockout, like the login page."""

    throttle_classes = [LoginRateThrottle]
    # ObtainAuthToken names its own parsers; ours refuses over-deep JSON with a 400.
    parser_classes = [FormParser, MultiPartParser, SafeJSONParser]
    # Credentials go in the body: this endpoint takes no token or session (and the schema
    # says so), and a wrong password is a 401, not "invalid input".
    authentication_classes = []

    def get_authenticate_header(self, request):
        # With no authenticators DRF would turn the 401 into a 403; a wrong password is a 401.
        return "Token"

    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        if not serializer.is_valid():
            data = request.data if isinstance(request.data, Mapping) else {}
            given = all(isinstance(data.get(k), str) and data.get(k) for k in ("username", "password"))
            if given:
                # Both given but not a valid pair - including values no account can have
                # (a NUL character): a wrong password, never a hint about which part.
                raise exceptions.AuthenticationFailed("Wrong user name or password.")
            raise exceptions.ValidationError(serializer.errors)
        return super().post(request, *args, **kwargs)
