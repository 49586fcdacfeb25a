"""A Gemma-3-sized synthetic vocabulary, and long valid answers to replay through it.

262,144 tokens: the control tokens (blank, as ``grammar.tokenizer_info_for`` makes them),
the 256 byte tokens, every printable ASCII character, then random pieces of 2-14
characters (30% with a leading "▁"), some with quotes and brackets, as a real vocabulary
has. Deterministic (seeded); no model's real vocabulary is used or committed. Shared by
``test_mask_speed.py`` and ``benchmarks/run_grammar_mask_test.py``.
"""

from __future__ import annotations

import json
import random
from functools import cache

import xgrammar as xgr

from analysis.engine.schemas import (
    ANSWER_MAX_CHARS,
    CATEGORIES,
    DESCRIPTION_MAX_CHARS,
    IMAGE_ADEQUACY,
    LABEL_MAX_CHARS,
    LIVE_LABEL_MAX_CHARS,
    LOCATIONS,
    MAX_FINDINGS,
    NEXT_STEP_MAX_CHARS,
)

TOKENS = 262_144
MODEL_VOCAB = 262_208  # Gemma 3's padded embedding size
STOP_TOKENS = [1, 3]  # <eos>, <end_of_turn> (ids 0-3 are the blank control tokens)
ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:-_'\"()[]{}/\\!?@#$%^&*+=<>|~`"


@cache
def synthetic_vocabulary(seed: int = 0) -> tuple[str, ...]:
    rng = random.Random(seed)
    vocab = [""] * 4 + [f"<0x{i:02X}>" for i in range(256)] + list(ALPHABET.replace(" ", "▁"))
    seen = set(vocab)
    while len(vocab) < TOKENS:
        piece = "".join(rng.choice(ALPHABET) for _ in range(rng.choice([2, 3, 3, 4, 4, 5, 6, 7, 8, 10, 12, 14])))
        piece = piece.replace(" ", "▁")
        piece = ("▁" + piece) if rng.random() < 0.3 else piece
        if piece not in seen:
            seen.add(piece)
            vocab.append(piece)
    return tuple(vocab)


@cache
def synthetic_tokenizer_info(seed: int = 0) -> xgr.TokenizerInfo:
    return xgr.TokenizerInfo(list(synthetic_vocabulary(seed)), vocab_type=xgr.VocabType.BYTE_FALLBACK,
                             vocab_size=MODEL_VOCAB, stop_token_ids=STOP_TOKENS)


def _prose(length: int, seed: int) -> str:
    words = ("sessile", "polyp", "with", "a", "smooth", "surface", "regular", "pit", "pattern", "no", "ulceration,",
             "about", "6-8", "mm;", "seen", "clearly", "(NBI)", "on", "the", "fold", "of", "mucosa.")
    rng = random.Random(seed)
    text = ""
    while len(text) < length:
        text += rng.choice(words) + " "
    return text[:length - 1].rstrip() + "."


def _longest(values) -> str:
    return max(values, key=len)


def long_answer(procedure_type: str, kind: str) -> str:
    """A valid answer of ``kind`` with every list full and every text at its bound."""
    if kind == "clarify":
        return json.dumps({"answer": _prose(ANSWER_MAX_CHARS, 1), "confidence": 0.85,
                           "relevant_category": _longest(CATEGORIES[procedure_type]),
                           "relevant_location": _longest(LOCATIONS[procedure_type]),
                           "image_adequacy": _longest(IMAGE_ADEQUACY)}, separators=(",", ":"))
    findings = []
    for index in range(MAX_FINDINGS):
        finding = {"category": _longest(CATEGORIES[procedure_type]), "location": _longest(LOCATIONS[procedure_type]),
                   "risk": "medium"}
        if kind == "live":
            finding |= {"confidence": 100, "size_mm": 199, "label": _prose(LIVE_LABEL_MAX_CHARS, index)}
        else:
            finding |= {"confidence": 0.85, "size_mm": 199.5, "label": _prose(LABEL_MAX_CHARS, index),
                        "description": _prose(DESCRIPTION_MAX_CHARS, index + 10),
                        "suggested_next_step": _prose(NEXT_STEP_MAX_CHARS, index + 20)}
        findings.append(finding)
    return json.dumps({"image_adequacy": _longest(IMAGE_ADEQUACY), "no_finding": False, "findings": findings},
                      separators=(",", ":"))


def character_tokens(text: str, seed: int = 0) -> list[int]:
    """One token per character (the slowest way a model can write the answer)."""
    index = {piece: i for i, piece in enumerate(synthetic_vocabulary(seed)) if len(piece) == 1}
    return [index["▁" if ch == " " else ch] for ch in text]


def greedy_tokens(text: str, seed: int = 0) -> list[int]:
    """Longest-match tokenisation over the synthetic vocabulary (multi-character pieces,
    some crossing quotes and brackets, as a real tokenizer's would)."""
    index: dict[str, int] = {}
    for i, piece in enumerate(synthetic_vocabulary(seed)):
        if piece and not piece.startswith("<0x"):
            index.setdefault(piece.replace("▁", " "), i)
    tokens, position = [], 0
    while position < len(text):
        for length in range(14, 0, -1):
            token = index.get(text[position:position + length])
            if token is not None:
                tokens.append(token)
                position += length
                break
        else:  # pragma: no cover - every ASCII character is in the vocabulary
            raise ValueError(f"no token for {text[position]!r}")
    return tokens
