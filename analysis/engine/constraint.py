"""Per-row decoding constraint: the answer grammar plus exact text-length limits.

``answer_grammar`` leaves text fields unbounded in the grammar (bounded repetitions make
xgrammar's masks slow with a 262k vocabulary) and lists their bounds instead. This module
enforces them, exactly, inside the same token bitmask:

* ``TokenTexts`` knows, for every token of a vocabulary, how many characters it adds to
  the string it starts in (the bytes before its first ``"``) and the longest run it puts
  inside a string it opens;
* ``RowConstraint`` follows one answer as it is written (which JSON string it is in, which
  key that string belongs to, how many characters it has) and, after xgrammar has filled
  a row of the bitmask, ANDs in the precomputed mask "tokens that fit in the characters
  left" - one 32 KB AND per step for a 262k vocabulary.

The text alphabet of our schemas has no ``"`` and no ``\\`` (``schemas.TEXT_CHARS``), so a
``"`` always ends or starts a string and the tracking needs no JSON parser: the grammar
guarantees the structure, this module only counts.

A token that would open a string and put more characters into it than the shortest text
bound of the grammar is refused outright (never in practice: keys and enum values are
shorter than every text bound, and no tokenizer has 40-character pieces after a quote).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import xgrammar as xgr

QUOTE = ord('"')


def pack_bits(allowed: np.ndarray, words: int) -> torch.Tensor:
    """A boolean per token -> xgrammar's bitmask row (int32 words, bit i of word j is
    token 32*j + i)."""
    padded = np.zeros(words * 32, dtype=bool)
    padded[: allowed.shape[0]] = allowed
    return torch.from_numpy(np.packbits(padded, bitorder="little").view("<i4").copy())


class TokenTexts:
    """Length facts about every token of one vocabulary (built once per tokenizer)."""

    def __init__(self, tokenizer_info: xgr.TokenizerInfo):
        self.vocab_size = tokenizer_info.vocab_size
        self.words = xgr.get_bitmask_shape(1, self.vocab_size)[1]
        decoded = list(tokenizer_info.decoded_vocab)
        decoded += [b""] * (self.vocab_size - len(decoded))
        special = set(tokenizer_info.special_token_ids) | set(tokenizer_info.stop_token_ids)
        self.texts: list[bytes] = [b"" if index in special else text for index, text in enumerate(decoded)]
        first = np.zeros(self.vocab_size, dtype=np.int32)
        # Longest run inside a string that the token opens, when it starts inside (in_run)
        # or outside (out_run) a string.
        in_run = np.zeros(self.vocab_size, dtype=np.int32)
        out_run = np.zeros(self.vocab_size, dtype=np.int32)
        for index, text in enumerate(self.texts):
            if QUOTE not in text:
                first[index] = len(text)
                continue
            segments = [len(part) for part in text.split(b'"')]
            first[index] = segments[0]
            in_run[index] = max(segments[2::2], default=0)
            out_run[index] = max(segments[1::2], default=0)
        self.first_len = first
        self.in_run = in_run
        self.out_run = out_run
        self.longest_first = int(first.max(initial=0))

    def masks(self, shortest_limit: int, longest_limit: int) -> TextMasks:
        return TextMasks(self, shortest_limit, longest_limit)


class TextMasks:
    """Packed bitmask rows for one grammar's text bounds (see the module docstring)."""

    def __init__(self, texts: TokenTexts, shortest_limit: int, longest_limit: int):
        self.texts = texts
        self.limit = shortest_limit if shortest_limit > 0 else np.iinfo(np.int32).max
        self.ok_in = texts.in_run <= self.limit
        self.ok_out = texts.out_run <= self.limit
        self.in_all = bool(self.ok_in.all())
        self.out_all = bool(self.ok_out.all())
        self.in_string = pack_bits(self.ok_in, texts.words)
        self.out_string = pack_bits(self.ok_out, texts.words)
        # One row per number of characters left, built now: a mask fill must not pay for
        # packing 262k bits the first time a count comes up.
        self.top = min(texts.longest_first, max(longest_limit, 0))
        self._fits = [pack_bits(self.ok_in & (texts.first_len <= left), texts.words) for left in range(self.top + 1)]

    def fits(self, remaining: int) -> torch.Tensor:
        """Tokens that add at most ``remaining`` characters to the current string."""
        return self._fits[min(remaining, self.top)]


@dataclass
class _TextState:
    in_string: bool = False
    is_key: bool = False
    # Characters left in the current text value; None outside text values (keys and enum
    # values are bounded by the grammar itself).
    remaining: int | None = None
    after_colon: bool = False
    last_key: bytes = b""
    key: bytearray | None = None


class RowConstraint:
    """One row's grammar matcher and text tracker. Not thread-safe; one per answer."""

    def __init__(self, compiled: xgr.CompiledGrammar, text_limits: dict[str, int], masks: TextMasks):
        self.matcher = xgr.GrammarMatcher(compiled)
        self.limits = {key.encode(): limit for key, limit in text_limits.items()}
        self.masks = masks
        self.texts = masks.texts
        self.state = _TextState()
        self.rejected = False

    # ------------------------------------------------------------------ queries

    def is_terminated(self) -> bool:
        return self.matcher.is_terminated()

    def is_completed(self) -> bool:
        return self.matcher.is_completed()

    def allows(self, token: int) -> bool:
        """The length rule alone (the grammar is asked by ``accept``)."""
        state = self.state
        if state.in_string:
            if not self.masks.ok_in[token]:
                return False
            return state.remaining is None or int(self.texts.first_len[token]) <= state.remaining
        return bool(self.masks.ok_out[token])

    # ------------------------------------------------------------------ updates

    def fill(self, bitmask: torch.Tensor, row: int) -> None:
        """Write the tokens allowed next into ``bitmask[row]`` (grammar AND length)."""
        self.matcher.fill_next_token_bitmask(bitmask, row)
        state = self.state
        if state.in_string:
            if state.remaining is not None:
                bitmask[row].bitwise_and_(self.masks.fits(state.remaining))
            elif not self.masks.in_all:
                bitmask[row].bitwise_and_(self.masks.in_string)
        elif not self.masks.out_all:
            bitmask[row].bitwise_and_(self.masks.out_string)

    def accept(self, token: int) -> bool:
        """Advance by one token; False (and nothing changes) if it is not allowed."""
        if self.rejected or not self.allows(token) or not self.matcher.accept_token(token):
            return False
        self._track(self.texts.texts[token])
        return True

    def reject(self) -> None:
        self.rejected = True

    def jump_forward(self) -> list[int]:
        """Accept and return the tokens the grammar forces next (JSON keys, punctuation, the
        rest of an enum value), as xgrammar tokenises them; empty when nothing is forced."""
        forced: list[int] = []
        for token in self.matcher.find_jump_forward_tokens():
            if not self.accept(token):
                break
            forced.append(token)
        return forced

    def _track(self, text: bytes) -> None:
        state = self.state
        for byte in text:
            if state.in_string:
                if byte == QUOTE:
                    if state.is_key and state.key is not None:
                        state.last_key = bytes(state.key)
                    state.in_string, state.is_key, state.remaining, state.key = False, False, None, None
                elif state.remaining is not None:
                    state.remaining -= 1
                elif state.is_key and state.key is not None and len(state.key) < 64:
                    state.key.append(byte)
            elif byte == QUOTE:
                state.in_string = True
                if state.after_colon:
                    state.is_key, state.key = False, None
                    state.remaining = self.limits.get(state.last_key)
                else:
                    state.is_key, state.key, state.remaining = True, bytearray(), None
                state.after_colon = False
            elif byte == ord(":"):
                state.after_colon = True
            elif byte in b",{[":
                state.after_colon = False
