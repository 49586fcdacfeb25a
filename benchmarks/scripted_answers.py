"""Scripted answers: replay fixed, realistic answers through an engine's real decode path.

A random-weight model writes every text field to its bound and decides arbitrarily how
many findings it sees, so timing its own answers measures answer lengths nobody will ever
see. Here every *decision* of the model is replaced by the next piece of a scripted answer
(0, 1 or 3 findings, realistic prose) - after the forward pass, the grammar mask and the
argmax have all run as usual - so the cost per answer is the real path's cost for an answer
of realistic length. Both engines replay the same text: the reference path through a
logits processor that runs after the grammar processor, the fast engine by replacing its
``choose`` step. Benchmark code only; nothing in the app uses it.

The chosen token is the longest piece of the remaining script that is one token and that
the (already masked) logits allow; at the end of the script, a stop token.
"""

from __future__ import annotations

import json

import torch
import transformers

FINDINGS = [
    {"category": "polyp", "location": "sigmoid_colon", "risk": "medium", "confidence": 0.82, "size_mm": 6,
     "label": "Sessile polyp, smooth surface",
     "description": "Sessile polyp of about 6 mm on a fold, smooth surface, regular pit pattern, no ulceration.",
     "suggested_next_step": "Consider polypectomy; send for histology."},
    {"category": "diverticulum", "location": "descending_colon", "risk": "low", "confidence": 0.64, "size_mm": None,
     "label": "Diverticulum",
     "description": "Wide-mouthed diverticulum without inflammation or bleeding.",
     "suggested_next_step": "No action; document."},
    {"category": "inflammation", "location": "rectum", "risk": "medium", "confidence": 0.55, "size_mm": None,
     "label": "Patchy erythema",
     "description": "Patchy erythema with loss of vascular pattern over a short segment.",
     "suggested_next_step": "Consider biopsies of the affected mucosa."},
]


def scripted_answer(kind: str, findings: int) -> str:
    """A compact JSON answer of ``kind`` ("frame" or "live") with ``findings`` findings
    (colonoscopy vocabulary)."""
    chosen = FINDINGS[:findings]
    if kind == "live":
        chosen = [{"category": f["category"], "location": f["location"], "risk": f["risk"],
                   "confidence": round(f["confidence"] * 100), "size_mm": f["size_mm"],
                   "label": f["label"][:40]} for f in chosen]
    answer = {"image_adequacy": "adequate", "no_finding": not chosen, "findings": chosen}
    return json.dumps(answer, separators=(",", ":"))


class ScriptChooser:
    """Picks the next token of a scripted answer from a row of masked logits."""

    def __init__(self, texts: list[bytes], stop_token_ids: list[int], longest_piece: int = 16):
        self.stop_token_ids = stop_token_ids
        self.longest_piece = longest_piece
        self.pieces: dict[bytes, int] = {}
        for token, text in enumerate(texts):
            if text and len(text) <= longest_piece:
                self.pieces.setdefault(text, token)
        self.texts = texts

    def written(self, tokens: list[int]) -> int:
        return sum(len(self.texts[token]) for token in tokens)

    def choose(self, script: bytes, tokens: list[int], logits: torch.Tensor) -> int:
        done = self.written(tokens)
        remaining = script[done:]
        if script[:done] != b"".join(self.texts[t] for t in tokens):
            raise RuntimeError("the engine wrote something other than the script (forced text differs)")
        if not remaining:
            for stop in self.stop_token_ids:
                if torch.isfinite(logits[stop]):
                    return stop
            raise RuntimeError("the script is complete but the grammar allows no stop token")
        for length in range(min(self.longest_piece, len(remaining)), 0, -1):
            token = self.pieces.get(remaining[:length])
            if token is not None and torch.isfinite(logits[token]):
                return token
        raise RuntimeError(f"no allowed token continues the script at {remaining[:20]!r}")


class ScriptedReference(transformers.LogitsProcessor):
    """For the reference path: runs after the grammar processor and forces the script."""

    def __init__(self, chooser: ScriptChooser, scripts: list[bytes], prompt_length: int):
        self.chooser = chooser
        self.scripts = scripts
        self.prompt_length = prompt_length

    def __call__(self, input_ids, scores):
        for row in range(scores.shape[0]):
            generated = input_ids[row, self.prompt_length:].tolist()
            stops = [i for i, t in enumerate(generated) if t in self.chooser.stop_token_ids]
            if stops:
                continue  # finished; generate pads it
            token = self.chooser.choose(self.scripts[row], generated, scores[row])
            scores[row] = float("-inf")
            scores[row, token] = 0.0
        return scores


def script_reference(analyzer, chooser: ScriptChooser, scripts: list[bytes]):
    """Make ``analyzer``'s (a TransformersAnalyzer) next ``generate`` calls replay ``scripts``
    (one per row); returns a function that undoes it."""
    model = analyzer.model
    original = model.generate

    def generate(**kwargs):
        processors = list(kwargs.get("logits_processor") or [])
        processors.append(ScriptedReference(chooser, scripts, kwargs["input_ids"].shape[1]))
        kwargs["logits_processor"] = processors
        return original(**kwargs)

    model.generate = generate
    return lambda: setattr(model, "generate", original)


def script_fast(analyzer, chooser: ScriptChooser, scripts_by_tag: dict):
    """Make a FastAnalyzer's decoder replay ``scripts_by_tag[row.request.tag]``; returns undo."""
    decoder = analyzer.decoder

    def choose(rows, logits, index_of):
        chosen = logits.argmax(dim=-1).tolist()  # the real step's work, then the script decides
        for row in rows:
            index = index_of[id(row)]
            chosen[index] = chooser.choose(scripts_by_tag[row.request.tag], row.output, logits[index])
        return chosen

    decoder.choose = choose
    return lambda: delattr(decoder, "choose")
