"""The analyzer set up the ways only a benchmark needs, from the production classes as
they are (they carry no benchmark switches):

* ``fast_engine``: a ``FastAnalyzer`` over an already loaded reference with other engine
  settings (jump-forward off, more rows, a longer context), so engines are compared on one
  loaded model;
* ``max_new_tokens``: answers cut after N tokens for a while (1-token calls time the
  reference path's fixed cost; the parsing benchmark's raw contrast);
* ``grammar_off``: the reference path's ``generate`` without the answer grammar for a
  while (the parsing benchmark's contrast: what a random model writes unconstrained).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from analysis.engine.backends.fast_backend import FastAnalyzer
from analysis.engine.backends.transformers_backend import TransformersAnalyzer


def _reference_path(analyzer: Any) -> TransformersAnalyzer:
    if not isinstance(analyzer, TransformersAnalyzer):
        raise TypeError(f"expected the reference path (a TransformersAnalyzer), got {type(analyzer).__name__}; "
                        "build it with engine='reference'")
    return analyzer


def fast_engine(reference: TransformersAnalyzer, **config_changes: Any) -> FastAnalyzer:
    """A ``FastAnalyzer`` over ``reference``'s loaded model, processor and compiled
    grammars, with ``config_changes`` (``EngineConfig`` fields) applied.

    ``FastAnalyzer`` takes its settings from its reference's config, so it is given a
    shallow copy of ``reference`` whose config differs: the weights, grammars and lock
    are the same objects, only the settings are not. Closing the result leaves
    ``reference`` usable.
    """
    view = copy.copy(_reference_path(reference))
    view.config = replace(reference.config, **config_changes)
    return FastAnalyzer(view)


@contextmanager
def max_new_tokens(analyzer: TransformersAnalyzer, tokens: int) -> Iterator[TransformersAnalyzer]:
    """While the block runs, ``analyzer`` (the reference path) ends every answer after
    ``tokens`` new tokens: its ``max_new_tokens`` setting, changed and put back."""
    analyzer = _reference_path(analyzer)
    original = analyzer.config
    analyzer.config = replace(original, max_new_tokens=tokens)
    try:
        yield analyzer
    finally:
        analyzer.config = original


@contextmanager
def grammar_off(analyzer: TransformersAnalyzer) -> Iterator[TransformersAnalyzer]:
    """While the block runs, ``analyzer``'s (the reference path) ``generate`` calls run
    without the answer grammar: its logits processor is taken out of each call. Results
    are still parsed and validated as usual, so they show what the raw model writes."""
    from analysis.engine.grammar import GrammarLogitsProcessor

    model = _reference_path(analyzer).model
    patched_before = "generate" in vars(model)
    original = model.generate

    def generate(**kwargs):
        kwargs["logits_processor"] = [processor for processor in kwargs.get("logits_processor") or []
                                      if not isinstance(processor, GrammarLogitsProcessor)]
        return original(**kwargs)

    model.generate = generate
    try:
        yield analyzer
    finally:
        if patched_before:
            model.generate = original
        else:
            del model.generate
