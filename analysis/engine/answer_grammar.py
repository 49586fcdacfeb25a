"""The grammar that forces the local model's answers, built from the answer JSON Schema.

Why not xgrammar's own JSON-Schema compiler (``compile_json_schema``)? Measured with a
Gemma-3-sized vocabulary (262,144 tokens, ``tests/engine/test_mask_speed.py``,
benchmarks/README.md): every string it builds - a ``pattern``, a ``maxLength``, any bound
``{1,n}``, even an unbounded pattern - becomes a rule whose token masks xgrammar cannot
precompute, so each mask inside a string is recomputed over the whole vocabulary at run
time: about 4-6 ms per decoding step at any bound, up to hundreds of ms with the old
200-character bound. A character class written *inline* in the rule that surrounds it
(``"\\"" [chars] [chars]* "\\""``) is precomputed and costs microseconds.

So the grammar built here (EBNF, from the same JSON Schema that validates the answers and
that remote servers get as ``response_format``):

* writes every text field as an inline character class with no length bound, and hands the
  bounds (``maxLength``) to ``TextLimits``; ``constraint.py`` enforces them exactly by
  AND-ing a per-token length mask into the same token bitmask (see there);
* writes enums, ``const``, ``null``, booleans and objects (fixed key order, compact
  separators) as literals;
* writes numbers as short decimal literals: integers within their range, and non-integers
  with at most ``schemas.NUMBER_DECIMALS[field]`` decimals;
* unrolls bounded arrays (``[x]``, ``[x,x]``, ...) and factors the common beginning of
  ``anyOf`` branches (the frame schema's "no finding" / "findings" split).

Anything else in a schema is refused with an error naming it: a schema change that this
builder does not understand fails loudly in the tests instead of silently loosening the
grammar.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from .schemas import NUMBER_DECIMALS, TEXT_CHARS, json_schema_for

_TEXT_PATTERN = re.compile(r"^\^" + re.escape(TEXT_CHARS) + r"\{1,(\d+)\}\$$")


class UnsupportedSchema(ValueError):
    """The answer schema uses something the grammar builder does not translate."""


@dataclass(frozen=True)
class AnswerGrammar:
    """EBNF text for xgrammar plus the text bounds it leaves to ``TextLimits``."""

    ebnf: str
    # JSON key -> the maximum number of characters of that key's text value.
    text_limits: dict[str, int] = field(default_factory=dict)

    @property
    def shortest_text_limit(self) -> int:
        return min(self.text_limits.values(), default=0)


def _literal(text: str) -> str:
    """An EBNF string literal matching ``text`` exactly."""
    return json.dumps(text)


class _Builder:
    def __init__(self) -> None:
        self.rules: dict[str, str] = {}
        self.text_limits: dict[str, int] = {}

    # An item is ("lit", text) or ("expr", ebnf); sequences of items are merged into EBNF
    # only at the end, so that anyOf branches can be compared item by item.

    def items(self, node: dict[str, Any], key: str | None) -> list[tuple[str, str]]:
        if "anyOf" in node:
            return self.any_of(node["anyOf"], key)
        if "const" in node:
            return [("lit", json.dumps(node["const"], separators=(",", ":")))]
        if "enum" in node:
            return [("expr", self.alternatives([[("lit", json.dumps(v))] for v in node["enum"]]))]
        kind = node.get("type")
        if kind == "object":
            return self.object(node)
        if kind == "array":
            return self.array(node, key)
        if kind == "string":
            return self.string(node, key)
        if kind == "boolean":
            return [("expr", '("true" | "false")')]
        if kind == "null":
            return [("lit", "null")]
        if kind == "integer":
            return [("expr", self.integer(node, key))]
        if kind == "number":
            return [("expr", self.number(node, key))]
        raise UnsupportedSchema(f"the answer grammar cannot translate {node!r} (field {key!r})")

    def object(self, node: dict[str, Any]) -> list[tuple[str, str]]:
        properties = node.get("properties", {})
        if set(node.get("required", [])) != set(properties):
            raise UnsupportedSchema("every property of an answer object must be required (fixed key order)")
        if node.get("additionalProperties", False) not in (False, None):
            raise UnsupportedSchema("answer objects must not allow additional properties")
        out: list[tuple[str, str]] = [("lit", "{")]
        for index, (name, value) in enumerate(properties.items()):
            out.append(("lit", ("," if index else "") + json.dumps(name) + ":"))
            out.extend(self.items(value, name))
        out.append(("lit", "}"))
        return out

    def array(self, node: dict[str, Any], key: str | None) -> list[tuple[str, str]]:
        low, high = node.get("minItems", 0), node.get("maxItems")
        if high is None:
            raise UnsupportedSchema(f"array {key!r} needs maxItems (answers must have a bounded length)")
        if high == 0:
            return [("lit", "[]")]
        item_rule = self.rule(f"{key or 'item'}_item", self.sequence(self.items(node["items"], key)))
        # "[" x ("," x ("," x)?)? "]" for minItems 1, maxItems 3: a fixed number of required
        # items, then nested optional ones.
        tail = ""
        for _ in range(high - max(low, 1)):
            tail = f'("," {item_rule}{" " + tail if tail else ""})?'
        required = " ".join([item_rule] + [f'"," {item_rule}'] * (max(low, 1) - 1))
        body = f"{required} {tail}".strip()
        if low == 0:
            return [("lit", "["), ("expr", f"({body})?"), ("lit", "]")]
        return [("lit", "["), ("expr", body), ("lit", "]")]

    def string(self, node: dict[str, Any], key: str | None) -> list[tuple[str, str]]:
        match = _TEXT_PATTERN.match(node.get("pattern", ""))
        if match is None or key is None:
            raise UnsupportedSchema(
                f"text field {key!r} must use the pattern ^{TEXT_CHARS}{{1,n}}$ (got {node.get('pattern')!r})"
            )
        limit = int(match.group(1))
        if node.get("maxLength", limit) != limit or node.get("minLength", 1) != 1:
            raise UnsupportedSchema(f"text field {key!r}: pattern and minLength/maxLength disagree")
        if self.text_limits.setdefault(key, limit) != limit:
            raise UnsupportedSchema(f"two text fields named {key!r} have different bounds")
        # Inline, so that xgrammar precomputes its token masks (see the module docstring).
        return [("lit", '"'), ("expr", f"{TEXT_CHARS} {TEXT_CHARS}*"), ("lit", '"')]

    def integer(self, node: dict[str, Any], key: str | None) -> str:
        low, high = node.get("minimum"), node.get("maximum")
        if low != 0 or not isinstance(high, int):
            raise UnsupportedSchema(f"integer {key!r} needs minimum 0 and an integer maximum")
        return f"({_uint_up_to(high)})"

    def number(self, node: dict[str, Any], key: str | None) -> str:
        low, high = node.get("minimum"), node.get("maximum")
        if low != 0 or high is None or float(high) != int(high) or int(high) < 1:
            raise UnsupportedSchema(f"number {key!r} needs minimum 0 and a whole maximum >= 1")
        if key not in NUMBER_DECIMALS:
            raise UnsupportedSchema(f"number {key!r} has no entry in schemas.NUMBER_DECIMALS")
        high, decimals = int(high), NUMBER_DECIMALS[key]
        digits = " ".join(["[0-9]"] + ["[0-9]?"] * (decimals - 1))
        zeros = " ".join(['"0"'] + ['"0"?'] * (decimals - 1))
        below = _uint_up_to(high - 1)
        return f'(({below}) ("." {digits})? | "{high}" ("." {zeros})?)'

    def any_of(self, branches: list[dict[str, Any]], key: str | None) -> list[tuple[str, str]]:
        sequences = [self.items(branch, key) for branch in branches]
        prefix = _common_prefix(sequences)
        rests = [sequence[len(prefix):] for sequence in sequences]
        suffix = _common_prefix([list(reversed(rest)) for rest in rests])
        if suffix:
            rests = [rest[: len(rest) - len(suffix)] for rest in rests]
        return [*prefix, ("expr", self.alternatives(rests)), *reversed(suffix)]

    def alternatives(self, sequences: list[list[tuple[str, str]]]) -> str:
        return "(" + " | ".join(self.sequence(sequence) or '""' for sequence in sequences) + ")"

    def sequence(self, items: list[tuple[str, str]]) -> str:
        parts: list[str] = []
        pending = ""
        for kind, text in items:
            if kind == "lit":
                pending += text
                continue
            if pending:
                parts.append(_literal(pending))
                pending = ""
            parts.append(text)
        if pending:
            parts.append(_literal(pending))
        return " ".join(parts)

    def rule(self, name: str, body: str) -> str:
        name = re.sub(r"[^a-z0-9_]", "_", name.lower())
        if self.rules.get(name, body) != body:
            raise UnsupportedSchema(f"two different grammar rules would be named {name!r}")
        self.rules[name] = body
        return name


def _common_prefix(sequences: list[list[tuple[str, str]]]) -> list[tuple[str, str]]:
    """The items every sequence starts with, leaving at least one item in each."""
    limit = min(len(sequence) for sequence in sequences) - 1
    prefix: list[tuple[str, str]] = []
    for items in zip(*sequences, strict=False):
        if len(prefix) >= limit or any(item != items[0] for item in items):
            break
        prefix.append(items[0])
    return prefix


def _uint_up_to(high: int) -> str:
    """EBNF for the decimal integers 0..high without leading zeros."""
    if high < 0:
        raise UnsupportedSchema("a range needs a non-negative maximum")
    text = str(high)
    options = ['"0"'] if high >= 0 else []
    # Shorter numbers than ``high``: any digits (no leading zero).
    for length in range(1, len(text)):
        options.append(" ".join(["[1-9]"] + ["[0-9]"] * (length - 1)))
    # Same length as ``high``: below it at the first differing digit, or equal.
    if high > 0:
        options.extend(_same_length_up_to(text, first=True))
    return " | ".join(dict.fromkeys(options))


def _same_length_up_to(text: str, first: bool) -> list[str]:
    """Numbers with ``len(text)`` digits that are <= ``text`` (no leading zero when first)."""
    head, rest = int(text[0]), text[1:]
    low = 1 if first else 0
    options = []
    if head > low:
        top = head - 1
        first_class = f"[{low}-{top}]" if top > low else f'"{low}"'
        options.append(" ".join([first_class] + ["[0-9]"] * len(rest)))
    if head >= low:
        if not rest:
            options.append(f'"{head}"')
        else:
            for tail in _same_length_up_to(rest, first=False):
                options.append(f'"{head}" {tail}')
    return options


@cache
def answer_grammar(procedure_type: str, kind: str) -> AnswerGrammar:
    """The grammar for answers of ``kind`` about a ``procedure_type`` frame."""
    builder = _Builder()
    root = builder.sequence(builder.items(json_schema_for(procedure_type, kind), None))
    rules = [f"root ::= {root}"] + [f"{name} ::= {body}" for name, body in builder.rules.items()]
    return AnswerGrammar(ebnf="\n".join(rules) + "\n", text_limits=dict(builder.text_limits))
