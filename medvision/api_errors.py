"""JSON errors a person can act on: always ``{"error": {"code", "message", "fields"?}}``."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            text = _first_message(value)
            return text if key in ("detail", "non_field_errors") else f"{key}: {text}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def exception_handler(exc, context):
    # Django's own Http404 / PermissionDenied (raised by procedures.access) become DRF's,
    # so the code is "not_found" / "permission_denied" and the reason is kept.
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    body = {"error": {"code": getattr(exc, "default_code", "error"), "message": _first_message(detail)}}
    if isinstance(exc, exceptions.ValidationError) and isinstance(detail, dict):
        body["error"]["fields"] = detail
    if isinstance(exc, exceptions.NotFound):
        body["error"]["message"] = "Not found: it does not exist, or you do not have access to it."
    response.data = body
    return response


def error_response(code: str, message: str, http_status=status.HTTP_400_BAD_REQUEST, **extra) -> Response:
    return Response({"error": {"code": code, "message": message, **extra}}, status=http_status)


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, machine-readable reason (e.g. not_found, permission_denied).")
    message = serializers.CharField(help_text="What went wrong and what to do about it, for a person.")
    fields = serializers.DictField(required=False, help_text="Per-field messages for invalid input.")


class ErrorSerializer(serializers.Serializer):
    """Every API error: ``{"error": {"code", "message", "fields"?}}``."""

    error = ErrorDetailSerializer()


ERRORS = {400: ErrorSerializer, 401: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer}


# --- errors raised before any API view runs -------------------------------------------
# A path that matches no route (a non-UUID id), a malformed request the server layer
# refuses, or an unexpected exception: under /api/ these are answered with the same JSON
# envelope as every other API error (Django's own pages are HTML).

_SERVER_ERRORS = {
    400: ("bad_request", "The request could not be read (malformed body or headers); check what you sent."),
    403: ("permission_denied", "You may not do this."),
    404: ("not_found", "Not found: it does not exist, or you do not have access to it."),
    500: ("server_error", "The server could not answer this request; it has been logged. Try again later."),
}


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def _json_error(status_code: int):
    from django.http import JsonResponse

    code, message = _SERVER_ERRORS[status_code]
    return JsonResponse({"error": {"code": code, "message": message}}, status=status_code)


@csrf_exempt  # it changes nothing; a stale cookie must not turn its 404 into an HTML 403
def unknown_api_path(request, *args, **kwargs):
    """The last route under /api/: with DEBUG on as well as off, a path no route matches
    (a non-UUID id, a typo) is the JSON 404, never Django's HTML page. A path that only
    lacks its trailing slash still gets what APPEND_SLASH gave it (a redirect for GET, the
    right path named otherwise), since this route now matches it first."""
    from django.http import HttpResponsePermanentRedirect, JsonResponse
    from django.urls import Resolver404, resolve

    if not request.path.endswith("/"):
        try:
            match = resolve(request.path + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not unknown_api_path:
            if request.method in ("GET", "HEAD"):
                query = request.META.get("QUERY_STRING", "")
                return HttpResponsePermanentRedirect(request.path + "/" + (f"?{query}" if query else ""))
            return JsonResponse({"error": {"code": "not_found", "message": (
                f"Not found: API paths end with a slash; send this request to {request.path}/ instead.")}},
                status=404)
    return _json_error(404)


def handler400(request, exception=None):
    if _is_api(request):
        return _json_error(400)
    from django.views.defaults import bad_request

    return bad_request(request, exception)


# --- pages (everything outside /api/) ------------------------------------------------
# In the site's look (templates/403.html, 404.html, 500.html), saying why and where to go.

PAGE_REASONS = {
    403: "You may not do this.",
    # The same words whether the thing does not exist or is another clinician's: which of
    # the two it is would itself tell something about another person's patients.
    404: "It does not exist, or it is not yours to see: a clinician sees only their own sessions.",
}


def _session_link(request) -> str | None:
    """The session page of the URL refused, for "back to the session" (a 403 is only ever
    about a session its reader may see; a 404's session may be another clinician's)."""
    from django.urls import NoReverseMatch, reverse

    match = getattr(request, "resolver_match", None)
    session_id = match.kwargs.get("session_id") if match else None
    if not session_id:
        return None
    try:
        url = reverse("procedures:detail", kwargs={"session_id": session_id})
    except NoReverseMatch:
        return None
    return None if url == request.path else url


def _page(request, status_code: int, *, reason: str, session_url: str | None = None):
    from django.shortcuts import render

    return render(request, f"{status_code}.html", {"reason": reason, "session_url": session_url,
                                                   "request_path": request.path}, status=status_code)


def handler403(request, exception=None):
    if _is_api(request):
        return _json_error(403)
    # The refusal's own reason (procedures.access words it for people), else a general one.
    reason = str(exception) if exception is not None and str(exception) else PAGE_REASONS[403]
    return _page(request, 403, reason=reason, session_url=_session_link(request))


def handler404(request, exception=None):
    if _is_api(request):
        return _json_error(404)
    return _page(request, 404, reason=PAGE_REASONS[404])


class SitePageNotFoundMiddleware:
    """A view's "not found" (another clinician's session, a wrong id) is the site's 404 page
    with DEBUG on too: the embedded profile, which clinicians try first, runs with DEBUG, and
    Django's technical 404 there lists the URL patterns and offers no way back. (A path no
    route matches keeps the technical page in DEBUG, for whoever is developing.)"""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        from django.conf import settings
        from django.http import Http404

        if not settings.DEBUG or not isinstance(exception, Http404) or _is_api(request):
            return None  # DEBUG off: Django calls handler404 itself; the API has its own errors
        return handler404(request, exception)


def csrf_failure(request, reason=""):
    """CSRF_FAILURE_VIEW: JSON under /api/ (DRF checks its own session-authenticated views;
    this covers the rest), Django's page elsewhere."""
    if _is_api(request):
        from django.http import JsonResponse

        return JsonResponse({"error": {"code": "csrf_failed", "message": (
            "CSRF check failed: a signed-in browser request needs the X-CSRFToken header; "
            "API clients should send an API token instead of the session cookie.")}}, status=403)
    from django.views.csrf import csrf_failure as django_csrf_failure

    return django_csrf_failure(request, reason)


def handler500(request):
    if _is_api(request):
        return _json_error(500)
    # 500.html is standalone (no base.html, no context processors, no database): whatever
    # failed may be what a richer page would need. Django's view renders it without context.
    from django.views.defaults import server_error

    return server_error(request)
