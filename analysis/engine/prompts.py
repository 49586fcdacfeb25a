"""Every prompt the engine sends, in one place, versioned.

Bump the matching version whenever a prompt's wording or layout changes: the version
travels in each result's provenance, so a finding can always be traced to the words that
produced it.

Layout (since frame-v2 / live-v1 / clarify-v2): the fixed instructions come *before* the
image and anything that varies per request (the clinician's question) after it. Everything
up to the image is then the same for every frame of a procedure type, so the fast engine
computes its attention keys and values once and copies them into each new row (the prefix
cache, ``engine/fast/prefix.py``) instead of running ~250 prompt tokens through the model
for every frame.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .schemas import (
    ANSWER_MAX_CHARS,
    CATEGORIES,
    CONFIDENCE_PERCENT_MAX,
    DESCRIPTION_MAX_CHARS,
    IMAGE_ADEQUACY,
    LABEL_MAX_CHARS,
    LIVE_LABEL_MAX_CHARS,
    LOCATIONS,
    MAX_FINDINGS,
    NEXT_STEP_MAX_CHARS,
    OUTPUT_KINDS,
    RISK_LEVELS,
    SIZE_MM_MAX,
    _check_procedure_type,
)

PROMPT_VERSION = "frame-v2"
LIVE_PROMPT_VERSION = "live-v1"
CLARIFY_PROMPT_VERSION = "clarify-v2"
PROMPT_VERSIONS = {"frame": PROMPT_VERSION, "live": LIVE_PROMPT_VERSION, "clarify": CLARIFY_PROMPT_VERSION}

QUESTION_MAX_CHARS = 500

PROCEDURE_NAMES = {
    "colonoscopy": "colonoscopy",
    "upper_gi": "upper GI endoscopy (esophagogastroduodenoscopy)",
    "bronchoscopy": "bronchoscopy",
    "other": "endoscopic procedure",
}

# Deliberately modest: the model proposes, a clinician decides. Nothing here asks the model
# to diagnose or to sound certain.
SYSTEM_PROMPT = (
    "You help a clinician review endoscopy video. You describe what is visible in one "
    "video frame so that the clinician can check it. You are not a diagnostic device and "
    "your output is not a diagnosis: describe only what the image shows, say when the image "
    "is not good enough, and keep suggestions tentative. Reply with one JSON object and "
    "nothing else."
)

_FRAME_KEYS_EXAMPLE = (
    '{"image_adequacy":...,"no_finding":...,"findings":[{"category":...,"location":...,'
    '"risk":...,"confidence":...,"size_mm":...,"label":...,"description":...,'
    '"suggested_next_step":...}]}'
)

_LIVE_KEYS_EXAMPLE = (
    '{"image_adequacy":...,"no_finding":...,"findings":[{"category":...,"location":...,'
    '"risk":...,"confidence":...,"size_mm":...,"label":...}]}'
)

_CLARIFY_KEYS_EXAMPLE = (
    '{"answer":...,"confidence":...,"relevant_category":...,"relevant_location":...,'
    '"image_adequacy":...}'
)


@dataclass(frozen=True)
class PromptParts:
    """The user turn around the image: ``before_image`` is fixed per (procedure type,
    kind), ``after_image`` carries what varies (empty for frames)."""

    before_image: str
    after_image: str = ""


def _listing(values: tuple[str, ...]) -> str:
    return ", ".join(values)


def _vocabulary(procedure_type: str) -> str:
    return (
        f"category must be one of: {_listing(CATEGORIES[procedure_type])}.\n"
        f"location must be one of: {_listing(LOCATIONS[procedure_type])} "
        "(use undetermined when the frame does not show where the scope is).\n"
    )


def frame_prompt(procedure_type: str) -> str:
    """Instructions for analysing one recorded frame of a ``procedure_type`` procedure."""
    _check_procedure_type(procedure_type)
    return (
        f"The image below is one frame from a {PROCEDURE_NAMES[procedure_type]} video.\n"
        "Report the findings visible in this frame.\n"
        + _vocabulary(procedure_type)
        + f"risk must be one of: {_listing(RISK_LEVELS)}. confidence is a number from 0 to 1. "
        "size_mm is the estimated size in millimetres, or null when it cannot be estimated.\n"
        f"image_adequacy must be one of: {_listing(IMAGE_ADEQUACY)}.\n"
        "If nothing abnormal is visible, set no_finding to true and findings to [].\n"
        f"List at most {MAX_FINDINGS} findings. Plain ASCII text only: label at most "
        f"{LABEL_MAX_CHARS} characters, description at most {DESCRIPTION_MAX_CHARS}, "
        f"suggested_next_step at most {NEXT_STEP_MAX_CHARS}.\n"
        f"Reply with JSON only, with exactly these keys: {_FRAME_KEYS_EXAMPLE}"
    )


def live_prompt(procedure_type: str) -> str:
    """Instructions for one live frame: the compact schema, no prose."""
    _check_procedure_type(procedure_type)
    return (
        f"The image below is a live frame from a {PROCEDURE_NAMES[procedure_type]}.\n"
        "Report the findings visible in it, briefly.\n"
        + _vocabulary(procedure_type)
        + f"risk must be one of: {_listing(RISK_LEVELS)}. confidence is a whole number from 0 to "
        f"{CONFIDENCE_PERCENT_MAX} (percent). size_mm is the estimated size in whole millimetres "
        f"(at most {SIZE_MM_MAX}), or null.\n"
        f"image_adequacy must be one of: {_listing(IMAGE_ADEQUACY)}.\n"
        "If nothing abnormal is visible, set no_finding to true and findings to [].\n"
        f"List at most {MAX_FINDINGS} findings; label is a short name, plain ASCII, at most "
        f"{LIVE_LABEL_MAX_CHARS} characters.\n"
        f"Reply with JSON only, with exactly these keys: {_LIVE_KEYS_EXAMPLE}"
    )


def sanitize_question(question: str) -> str:
    """Make a clinician's question safe to embed: single line, bounded, no control
    characters. Raises ValueError for an empty question."""
    text = re.sub(r"[\x00-\x1f\x7f]+", " ", question or "")
    text = re.sub(r"\s+", " ", text).strip()
    if not text:
        raise ValueError("The question is empty; ask something about the frame.")
    return text[:QUESTION_MAX_CHARS]


def clarify_instructions(procedure_type: str) -> str:
    """The fixed part of a follow-up question prompt (before the image)."""
    _check_procedure_type(procedure_type)
    return (
        f"The image below is one frame from a {PROCEDURE_NAMES[procedure_type]} video.\n"
        "Look at the frame again and answer the clinician's question about it, given after the image.\n"
        f"Answer in at most {ANSWER_MAX_CHARS} characters of plain ASCII. "
        "confidence is a number from 0 to 1.\n"
        f"relevant_category is one of: {_listing(CATEGORIES[procedure_type])}, or null.\n"
        f"relevant_location is one of: {_listing(LOCATIONS[procedure_type])}, or null.\n"
        f"image_adequacy must be one of: {_listing(IMAGE_ADEQUACY)}.\n"
        f"Reply with JSON only, with exactly these keys: {_CLARIFY_KEYS_EXAMPLE}"
    )


def clarify_question_text(question: str) -> str:
    """The varying part of a follow-up question prompt (after the image)."""
    return f'Question: "{sanitize_question(question)}"'


def clarify_prompt(procedure_type: str, question: str) -> str:
    """The whole text of a follow-up question prompt, for servers that take one text part."""
    return clarify_instructions(procedure_type) + "\n" + clarify_question_text(question)


def prompt_parts(procedure_type: str, kind: str, question: str | None = None) -> PromptParts:
    """The user turn of ``kind`` (one of ``OUTPUT_KINDS``) for ``procedure_type``."""
    if kind == "frame":
        return PromptParts(frame_prompt(procedure_type))
    if kind == "live":
        return PromptParts(live_prompt(procedure_type))
    if kind == "clarify":
        if question is None:
            raise ValueError("A clarify prompt needs the clinician's question.")
        return PromptParts(clarify_instructions(procedure_type), clarify_question_text(question))
    raise ValueError(f"Unknown output kind {kind!r}; use one of {', '.join(OUTPUT_KINDS)}.")


def messages_for(parts: PromptParts, image: object) -> list[dict]:
    """Chat messages in the processor's multimodal format: a system turn, then a user turn
    with the fixed instructions, the image, and the varying text after it (Gemma 3 puts
    the image where its ``<start_of_image>`` marker is)."""
    content: list[dict] = [{"type": "text", "text": parts.before_image}, {"type": "image", "image": image}]
    if parts.after_image:
        content.append({"type": "text", "text": parts.after_image})
    return [
        {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
        {"role": "user", "content": content},
    ]


def prompt_version_for(kind: str) -> str:
    if kind not in PROMPT_VERSIONS:
        raise ValueError(f"Unknown output kind {kind!r}; use one of {', '.join(OUTPUT_KINDS)}.")
    return PROMPT_VERSIONS[kind]
