"""JSON from untrusted peers: nesting too deep for the parser is bad input, not a crash.

Python's json module recurses per level; ``[`` x 100,000 raises RecursionError, which no
``except ValueError`` catches, so a request or WebSocket message built that way became a
server error (and, with DEBUG on, a debug page). Every parse of peer-supplied JSON goes
through ``loads`` (a ValueError on any bad input) or ``SafeJSONParser`` (DRF: a 400).
"""

from __future__ import annotations

import json
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

TOO_DEEP = "JSON nested too deeply; send a flat object."


def loads(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(TOO_DEEP) from None


class SafeJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(TOO_DEEP) from None
