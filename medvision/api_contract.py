"""The API takes exactly what its schema documents: no unknown fields, no unknown query
parameters, no empty filter values.

An integrator's typo must not pass silently: ``PATCH {"stauts": "confirmed"}`` or
``GET ...?rsik=high`` would otherwise answer 200 and do nothing (or return everything),
and the engineer finds out from a clinician. So every API view refuses what it does not
know with a 400 that names the parameters it does take, and the schema says so
(``additionalProperties: false`` on request bodies, ``minProperties`` where an empty body
means nothing, see ``medvision.api_schema``).

An empty filter value (``?risk=``) is refused as well, rather than read as "no filter":
the schema declares each filter's values, and "" is not one of them; leave the parameter
out to get everything.
"""

from __future__ import annotations

from collections.abc import Mapping

from rest_framework import serializers
from rest_framework.exceptions import ValidationError

# The JSON type each kind of field takes. DRF would coerce (``"4"`` -> 4.0, ``4`` -> "4",
# ``"yes"`` -> True), which hides a client's mistake and is not what the schema says.
_JSON_TYPES = (
    (serializers.BooleanField, (bool,), "true or false"),
    (serializers.ChoiceField, (str,), "a string"),
    (serializers.CharField, (str,), "a string"),
    (serializers.IntegerField, (int,), "an integer"),
    (serializers.FloatField, (int, float), "a number"),
)


def _json_type_error(field, value) -> str | None:
    if value is None:
        return None  # allow_null decides
    for kind, types, name in _JSON_TYPES:
        if isinstance(field, kind):
            wrong_bool = isinstance(value, bool) and bool not in types
            return None if isinstance(value, types) and not wrong_bool else f"Must be {name}."
    return None


class StrictFieldsMixin:
    """A request serializer that refuses keys it does not declare (read-only ones included,
    with a message saying where they are changed) and values of the wrong JSON type.
    ``min_fields``: how many keys a request needs at least (documented as ``minProperties``);
    ``schema_rules``: further JSON Schema keywords stating cross-field rules the serializer
    enforces, added to its request schema."""

    min_fields = 0
    read_only_hints: dict[str, str] = {}
    schema_rules: dict = {}

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            writable = {name: field for name, field in self.fields.items() if not field.read_only}
            accepted = ", ".join(sorted(writable)) or "nothing"
            errors = {}
            for key, value in data.items():
                if key in writable:
                    problem = _json_type_error(writable[key], value)
                    if problem:
                        errors[key] = [problem]
                elif key in self.fields:
                    errors[key] = [self.read_only_hints.get(key, "Read-only: it cannot be set here.")]
                else:
                    errors[key] = [f"Unknown field. This operation accepts: {accepted}."]
            if errors:
                raise ValidationError(errors)
        return super().to_internal_value(data)


def documented_query_params(view, method: str) -> set[str]:
    """The query parameters the schema documents for this view and method: its filters and
    its paginator's, on GET only."""
    if method not in ("GET", "HEAD"):
        return set()
    names: set[str] = set()
    if getattr(view, "filter_backends", None):
        filterset_class = getattr(view, "filterset_class", None)
        if filterset_class is not None:
            names |= set(filterset_class.base_filters)
        names |= set(getattr(view, "filterset_fields", None) or ())
    paginator = getattr(view, "paginator", None)
    if paginator is not None:
        for attribute in ("page_query_param", "page_size_query_param"):
            name = getattr(paginator, attribute, None)
            if name:  # page_size_query_param is None unless a paginator offers it
                names.add(name)
    return names


def check_query_params(view, request) -> None:
    allowed = documented_query_params(view, request.method)
    errors = {}
    for key, values in request.query_params.lists():
        if key not in allowed:
            takes = ", ".join(sorted(allowed)) if allowed else "no query parameters"
            errors[key] = [f"Unknown query parameter. This operation takes: {takes}."]
        elif any(value == "" for value in values):
            errors[key] = ["Empty value: give one of the documented values, or leave the parameter out."]
    if errors:
        raise ValidationError(errors)


class StrictQueryParamsMixin:
    """For every API view. Runs after authentication, permissions and throttles (a 401 or
    429 comes first), before the handler."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        check_query_params(self, request)
