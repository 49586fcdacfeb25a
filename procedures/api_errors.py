"""The session rules' errors as REST API errors, for every app's API views."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import PermissionDenied, ValidationError

from . import access, workflow


def as_api_errors(call):
    """Run ``call()``; a read-only session is a 403, a refused transition or an invalid
    value a 400 with the person-readable reason."""
    try:
        return call()
    except access.SessionReadOnly as exc:
        raise PermissionDenied(str(exc)) from None
    except workflow.NotAllowed as exc:
        raise ValidationError({"detail": str(exc)}) from None
    except DjangoValidationError as exc:
        raise ValidationError(exc.message_dict if hasattr(exc, "message_dict") else exc.messages) from None
