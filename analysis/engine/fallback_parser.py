"""From a model's text to a validated answer object, or a sentence saying why not.

The local engines force every answer through the answer grammar, so their text is a bare
JSON object of the schema. A remote OpenAI-compatible server may not apply the
``response_format`` (no guided decoding configured), and its model then tends to wrap the
JSON in a markdown code fence, or put prose before or after it. ``parse_model_output``
therefore tries, in order: the whole text as one JSON object ("json"); JSON objects in
code fences, then JSON objects embedded in the text ("json_extracted"). The first one
that validates against the answer schema (``schemas.output_model``) is the answer.

Nothing is guessed or repaired: an answer with no schema-valid JSON object is a failed
result (the caller keeps the raw text), never a half-made finding.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from .schemas import output_model


@dataclass(frozen=True)
class ParseOutcome:
    value: BaseModel | None
    parsed_with: str | None  # "json", "json_extracted" or None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.value is not None


_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_-]*)[ \t]*\n?(.*?)```", re.DOTALL)


def _embedded_objects(text: str, decoder: json.JSONDecoder) -> list[Any]:
    """Every JSON value that starts at a "{" of ``text``, outermost first, left to right."""
    objects = []
    index = text.find("{")
    while index >= 0:
        try:
            value, end = decoder.raw_decode(text, index)
        except ValueError:
            index = text.find("{", index + 1)
            continue
        objects.append(value)
        index = text.find("{", end)
    return objects


def json_candidates(text: str) -> list[dict[str, Any]]:
    """JSON objects in code fences first, then any object embedded in the text (each
    object once)."""
    decoder = json.JSONDecoder()
    found: list[Any] = []
    for match in _FENCE.finditer(text):
        body = match.group(2).strip()
        try:
            found.append(json.loads(body))
        except ValueError:
            found.extend(_embedded_objects(body, decoder))
    found.extend(_embedded_objects(text, decoder))
    unique: list[dict[str, Any]] = []
    for item in found:
        if isinstance(item, dict) and item not in unique:
            unique.append(item)
    return unique


def describe_validation_error(error: ValidationError, limit: int = 3) -> str:
    """The first ``limit`` problems of a validation error, for a person to read."""
    parts = []
    for item in error.errors()[:limit]:
        where = ".".join(str(p) for p in item.get("loc", ())) or "answer"
        parts.append(f"{where}: {item.get('msg', 'invalid')}")
    more = len(error.errors()) - limit
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


_KEPT = "It was not recorded as a finding; the raw output is kept for review."


def parse_model_output(raw: str, procedure_type: str, kind: str = "frame") -> ParseOutcome:
    """The engine's one way from model text to a validated object (see the module
    docstring). The error, when there is one, is a full sentence for a person."""
    model = output_model(procedure_type, kind)
    text = (raw or "").strip()
    what = {"frame": "frame analysis", "live": "live frame analysis"}.get(kind, "answer")
    if not text:
        return ParseOutcome(
            None, None, f"The model returned an empty {what}; retry the frame or check the model server."
        )
    try:
        return ParseOutcome(model.model_validate_json(text), "json", None)
    except ValidationError as error:
        if error.errors() and error.errors()[0].get("type") != "json_invalid":
            # One complete JSON object that breaks the schema: there is nothing else to find.
            return ParseOutcome(
                None,
                None,
                f"The model's {what} is JSON but does not fit the {procedure_type} schema "
                f"({describe_validation_error(error)}). {_KEPT}",
            )
    first_error: str | None = None
    for candidate in json_candidates(text):
        try:
            return ParseOutcome(model.model_validate(candidate), "json_extracted", None)
        except ValidationError as error:
            first_error = first_error or describe_validation_error(error)
    if first_error is not None:
        return ParseOutcome(
            None,
            None,
            f"The model's {what} could not be read: it contains JSON that does not fit the {procedure_type} "
            f"schema ({first_error}). {_KEPT}",
        )
    return ParseOutcome(
        None,
        None,
        f"The model's {what} could not be read: it is not JSON, and no JSON object was found in a code "
        f"fence or in its text. {_KEPT}",
    )
