"""The OpenAPI schema documents every error an operation can answer, as it answers it.

drf-spectacular documents the success responses a view declares; our errors are the same
JSON envelope everywhere (``medvision.api_errors``), so this AutoSchema adds, to every
operation, each error status it can produce that the view did not declare itself:
400 invalid input, 401 not authenticated (or wrong credentials at the token endpoint),
403 not allowed (a read-only session, a locked-out login), 404 an unknown id or someone
else's (operations with ids), 413 a body over the route's limit (operations with a body),
429 throttled. (The schema view, ``api_schema_view``, answers in JSON unless YAML is asked for.)
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from rest_framework.permissions import AllowAny

from .api_contract import StrictFieldsMixin
from .api_errors import ErrorSerializer


def _is_strict(serializer) -> bool:
    kind = serializer if isinstance(serializer, type) else type(serializer)
    return issubclass(kind, StrictFieldsMixin)


class DocumentedErrorsSchema(AutoSchema):
    def _requires_authentication(self) -> bool:
        permissions = getattr(self.view, "permission_classes", [])
        return bool(permissions) and not any(p is AllowAny for p in permissions)

    def _error_statuses(self) -> dict[str, str]:
        statuses = {"400": "Invalid input: the message says which field and why.",
                    "429": "Too many requests: slow down and retry after the period the message names."}
        if self._requires_authentication():
            statuses["401"] = "Not authenticated: send an API token (Authorization: Token ...) or sign in."
            statuses["403"] = "Not allowed: the session is signed (read-only) or not yours to change."
        else:
            statuses["401"] = "Wrong user name or password."
            statuses["403"] = "Locked out after repeated failed log-ins; wait and try again."
        if "{" in self.path:
            statuses["404"] = "Unknown id, or one you may not see (ids cannot be probed)."
        elif self._is_list_view():
            statuses["404"] = "No such page of results."
        if self.method in ("POST", "PUT", "PATCH"):
            statuses["413"] = "The request body is larger than this route accepts."
            statuses["415"] = "The body is not in a media type this operation reads."
        return statuses

    def _map_serializer(self, serializer, direction, bypass_extensions=False):
        # Request bodies take their declared fields only (medvision.api_contract).
        schema = super()._map_serializer(serializer, direction, bypass_extensions)
        if direction == "request" and _is_strict(serializer):
            schema["additionalProperties"] = False
            if serializer.min_fields:
                schema["minProperties"] = serializer.min_fields
            schema.update(serializer.schema_rules)
        return schema

    def _get_request_for_media_type(self, serializer, direction="request"):
        schema, required = super()._get_request_for_media_type(serializer, direction)
        if _is_strict(serializer) and serializer.min_fields:
            required = True  # no body is the empty body: it changes nothing and is refused
        return schema, required

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, description in self._error_statuses().items():
            if code not in responses:
                response = self._get_response_for_code(ErrorSerializer, code, ["application/json"], direction)
                response["description"] = description
                responses[code] = response
        return responses
