"""JSON errors a person can act on: always ``{"error": {"code", "message", "fields"?}}``."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
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
