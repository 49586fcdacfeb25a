"""Pages of API lists: page-number pagination whose pages carry the AI notice."""

from __future__ import annotations

from rest_framework.pagination import PageNumberPagination

from .notices import AI_DISCLAIMER


class DisclaimedPagination(PageNumberPagination):
    """``{"count", "next", "previous", "results", "disclaimer"}``."""

    def get_paginated_response(self, data):
        response = super().get_paginated_response(data)
        response.data["disclaimer"] = AI_DISCLAIMER
        return response

    def get_paginated_response_schema(self, schema):
        paginated = super().get_paginated_response_schema(schema)
        paginated["properties"]["disclaimer"] = {"type": "string", "example": AI_DISCLAIMER}
        paginated["required"] = [*paginated.get("required", []), "disclaimer"]
        return paginated
