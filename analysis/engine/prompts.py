"""Every prompt the engine sends, in one place, versioned.

Bump the matching version whenever a prompt's wording changes: the version travels in
each result's provenance, so a finding can always be traced to the words that produced it.
"""

from __future__ import annotations

import re

from .schemas import (
    ANSWER_MAX_CHARS,
    CATEGORIES,
    DESCRIPTION_MAX_CHARS,
    IMAGE_ADEQUACY,
    LABEL_MAX_CHARS,
    LOCATIONS,
    MAX_FINDINGS,
    NEXT_STEP_MAX_CHARS,
    RISK_LEVELS,
    _check_procedure_type,
)

PROMPT_VERSION = "frame-v1"
CLARIFY_PROMPT_VERSION = "clarify-v1"

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

_CLARIFY_KEYS_EXAMPLE = (
    '{"answer":...,"confidence":...,"relevant_category":...,"relevant_location":...,'
    '"image_adequacy":...}'
)


def _listing(values: tuple[str, ...]) -> str:
    return ", ".join(values)


def frame_prompt(procedure_type: str) -> str:
    """User-turn text for analysing one frame of a ``procedure_type`` procedure."""
    _check_procedure_type(procedure_type)
    return (
        f"This is one frame from a {PROCEDURE_NAMES[procedure_type]} video.\n"
        "Report the findings visible in this frame.\n"
        f"category must be one of: {_listing(CATEGORIES[procedure_type])}.\n"
        f"location must be one of: {_listing(LOCATIONS[procedure_type])} "
        "(use undetermined when the frame does not show where the scope is).\n"
        f"risk must be one of: {_listing(RISK_LEVELS)}. confidence is a number from 0 to 1. "
        "size_mm is the estimated size in millimetres, or null when it cannot be estimated.\n"
        f"image_adequacy must be one of: {_listing(IMAGE_ADEQUACY)}.\n"
        "If nothing abnormal is visible, set no_finding to true and findings to [].\n"
        f"List at most {MAX_FINDINGS} findings. Plain ASCII text only: label at most "
        f"{LABEL_MAX_CHARS} characters, description at most {DESCRIPTION_MAX_CHARS}, "
        f"suggested_next_step at most {NEXT_STEP_MAX_CHARS}.\n"
        f"Reply with JSON only, with exactly these keys: {_FRAME_KEYS_EXAMPLE}"
    )


def sanitize_question(question: str) -> str:
    """Make a clinician's question safe to embed: single line, bounded, no control
    characters. Raises ValueError for an empty question."""
    text = re.sub(r"[\x00-\x1f\x7f]+", " ", question or "")
    text = re.sub(r"\s+", " ", text).strip()
    if not text:
        raise ValueError("The question is empty; ask something about the frame.")
    return text[:QUESTION_MAX_CHARS]


def clarify_prompt(procedure_type: str, question: str) -> str:
    """User-turn text for a follow-up question about one frame."""
    _check_procedure_type(procedure_type)
    question = sanitize_question(question)
    return (
        f"This is one frame from a {PROCEDURE_NAMES[procedure_type]} video.\n"
        "Look at the frame again and answer the clinician's question about it.\n"
        f'Question: "{question}"\n'
        f"Answer in at most {ANSWER_MAX_CHARS} characters of plain ASCII. "
        "confidence is a number from 0 to 1.\n"
        f"relevant_category is one of: {_listing(CATEGORIES[procedure_type])}, or null.\n"
        f"relevant_location is one of: {_listing(LOCATIONS[procedure_type])}, or null.\n"
        f"image_adequacy must be one of: {_listing(IMAGE_ADEQUACY)}.\n"
        f"Reply with JSON only, with exactly these keys: {_CLARIFY_KEYS_EXAMPLE}"
    )


def messages_for(user_text: str, image: object) -> list[dict]:
    """Chat messages in the processor's multimodal format: a system turn, then a user turn
    with the image first and the instructions after it (Gemma 3 expects the image where
    its ``<start_of_image>`` marker should go)."""
    return [
        {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
        {
            "role": "user",
            "content": [{"type": "image", "image": image}, {"type": "text", "text": user_text}],
        },
    ]


def prompt_version_for(kind: str) -> str:
    return PROMPT_VERSION if kind == "frame" else CLARIFY_PROMPT_VERSION
