"""Prompt layouts equal the processor's tokens; the prefix cache changes nothing but speed."""

import pytest
import torch

from analysis.engine import PROCEDURE_TYPES, EngineConfig, get_analyzer
from analysis.engine.backends.fast_backend import frame_array
from analysis.engine.fast.decoder import Request
from analysis.engine.images import to_pil_rgb
from analysis.engine.prompts import messages_for, prompt_parts

from ..conftest import make_frames


@pytest.mark.parametrize("kind", ["frame", "live", "clarify"])
@pytest.mark.parametrize("procedure_type", PROCEDURE_TYPES)
def test_layouts_are_the_processors_token_ids(fast_analyzer, procedure_type, kind):
    question = "Is it bleeding?" if kind == "clarify" else None
    processor = fast_analyzer.reference.processor
    image = to_pil_rgb(make_frames(1)[0].image)
    text = processor.apply_chat_template(messages_for(prompt_parts(procedure_type, kind, question), image),
                                         add_generation_prompt=True, tokenize=False)
    expected = processor(text=[text], images=[[image]], add_special_tokens=False)["input_ids"][0]
    layout = fast_analyzer.decoder.layouts.layout(procedure_type, kind, question)
    assert list(layout.ids) == list(expected)
    assert layout.ids[layout.prefix_length] == fast_analyzer.decoder.runner.shape.boi_token_id
    assert layout.image_end - layout.image_start == fast_analyzer.decoder.runner.shape.image_tokens


def test_the_prefix_is_the_same_for_every_question(fast_analyzer):
    layouts = fast_analyzer.decoder.layouts
    short, long = (layouts.layout("colonoscopy", "clarify", q) for q in ("Size?", "Is the surface regular?"))
    assert short.prefix_length == long.prefix_length
    assert short.ids[: short.prefix_length] == long.ids[: long.prefix_length]


def _first_logits(analyzer, frame, procedure_type, kind):
    decoder = analyzer.decoder
    captured = {}
    original = decoder._decide

    def capture(rows, logits, all_rows=None):
        captured.setdefault("logits", logits.clone())
        return original(rows, logits, all_rows)

    decoder._decide = capture
    try:
        with analyzer.reference._cpu_thread_limit():
            decoder.admit([Request(image=frame_array(frame.image), procedure_type=procedure_type, kind=kind)])
            while decoder.rows:
                decoder.step()
    finally:
        decoder._decide = original
    return captured["logits"]


@pytest.mark.parametrize("kind", ["frame", "live"])
def test_logits_with_and_without_the_prefix_cache_agree(demo_model_dir, kind):
    config = dict(backend="demo", model=str(demo_model_dir), engine="fast", jump_forward=False)
    with_prefix = get_analyzer(EngineConfig(**config, prefix_cache=True))
    without = get_analyzer(EngineConfig(**config, prefix_cache=False))
    frame = make_frames(1, seed=12)[0]
    a = _first_logits(with_prefix, frame, "bronchoscopy", kind)
    b = _first_logits(without, frame, "bronchoscopy", kind)
    finite = torch.isfinite(a)
    assert torch.equal(finite, torch.isfinite(b))
    torch.testing.assert_close(a[finite], b[finite], atol=1e-4, rtol=0)
    assert with_prefix.analyze([frame], "bronchoscopy", kind)[0].raw_output == \
        without.analyze([frame], "bronchoscopy", kind)[0].raw_output


def test_each_prefix_is_computed_once(fast_analyzer, monkeypatch):
    prefixes = fast_analyzer.decoder.prefixes
    computed = []
    original = prefixes._compute
    monkeypatch.setattr(prefixes, "_compute", lambda p, k: computed.append((p, k)) or original(p, k))
    prefixes._prefixes.clear()
    for _ in range(3):
        fast_analyzer.analyze(make_frames(2), "other", "live")
    assert computed == [("other", "live")]
