"""The reference path (transformers generate + the answer grammar), on the demo model."""

import json
import time

import numpy as np
import pytest
import torch

from analysis.engine import (
    DEMO_MODEL_ID,
    PROMPT_VERSION,
    AnalysisResult,
    EngineConfig,
    FrameInput,
    OutOfMemory,
    frame_model,
    get_analyzer,
)
from analysis.engine.backends.common import split_latency_ms
from analysis.engine.backends.transformers_backend import TransformersAnalyzer
from analysis.engine.prompts import CLARIFY_PROMPT_VERSION, prompt_parts
from analysis.engine.revision import weights_sha256
from analysis.engine.schemas import max_new_tokens_for

from .conftest import make_frames


def test_analyze_returns_one_valid_result_per_frame_in_order(reference_analyzer, frames):
    results = reference_analyzer.analyze(frames, "colonoscopy")
    assert [r.frame_id for r in results] == [f.frame_id for f in frames]
    assert [r.timestamp_ms for r in results] == [f.timestamp_ms for f in frames]
    for result in results:
        assert isinstance(result, AnalysisResult)
        assert result.ok, result.error
        assert result.error is None
        # The stored raw output is exactly what validates.
        assert frame_model("colonoscopy").model_validate_json(result.raw_output) == result.analysis
        assert result.provenance.parsed_with == "json"


def test_every_result_carries_demo_provenance(reference_analyzer, demo_model_dir, frames):
    [result] = reference_analyzer.analyze(frames[:1], "bronchoscopy")
    provenance = result.provenance
    assert provenance.backend == "demo"
    assert provenance.is_demo is True
    assert provenance.model_id == DEMO_MODEL_ID
    assert provenance.model_revision == weights_sha256(demo_model_dir)
    assert provenance.prompt_version == PROMPT_VERSION
    assert isinstance(provenance.latency_ms, int) and provenance.latency_ms >= 0
    params = provenance.generation_params
    assert params["do_sample"] is False and params["num_beams"] == 1
    assert params["max_new_tokens"] == max_new_tokens_for("frame")
    assert params["dtype"] == "float32" and params["device"] == "cpu"
    assert "xgrammar" in params["constrained_decoding"]
    as_dict = json.loads(json.dumps(provenance.as_dict()))
    assert as_dict["model_revision"].startswith("sha256:")
    assert reference_analyzer.provenance_base.model_id == DEMO_MODEL_ID


def test_batched_generation_equals_one_by_one_under_greedy_decoding(reference_analyzer):
    frames = make_frames(4, seed=7)
    batched = reference_analyzer.analyze(frames, "upper_gi")
    single = [reference_analyzer.analyze([frame], "upper_gi")[0] for frame in frames]
    assert [r.raw_output for r in batched] == [r.raw_output for r in single]
    assert [r.analysis for r in batched] == [r.analysis for r in single]
    assert batched[0].provenance.generation_params["batch_size"] == 4
    assert single[0].provenance.generation_params["batch_size"] == 1


def test_left_padded_prompts_of_different_lengths_match_one_by_one(reference_analyzer):
    """Within analyze() all prompts have the same length; clarify-style prompts do not,
    so this exercises the left padding itself."""
    frames = make_frames(2, seed=3)
    prompts = [
        prompt_parts("colonoscopy", "clarify", "Size?"),
        prompt_parts("colonoscopy", "clarify", "Is the surface pattern of this lesion regular, and where exactly is it?"),
    ]
    [(_, together, _)] = list(reference_analyzer._generate_chunks(frames, prompts, "colonoscopy", "clarify"))
    apart = []
    for frame, prompt in zip(frames, prompts, strict=True):
        [(_, [row], _)] = list(reference_analyzer._generate_chunks([frame], [prompt], "colonoscopy", "clarify"))
        apart.append(row)
    assert [row.raw for row in together] == [row.raw for row in apart]
    assert all(row.failure is None for row in together)


def test_lists_longer_than_batch_size_are_split_into_batches(reference_analyzer, monkeypatch):
    sizes = []
    original = reference_analyzer.model.generate

    def recording(**kwargs):
        sizes.append(kwargs["input_ids"].shape[0])
        return original(**kwargs)

    monkeypatch.setattr(reference_analyzer.model, "generate", recording)
    results = reference_analyzer.analyze(make_frames(6), "other")
    assert sizes == [4, 2]
    assert len(results) == 6 and all(r.ok for r in results)


def test_clarify_answers_with_its_own_schema_and_prompt_version(reference_analyzer, frames):
    result = reference_analyzer.clarify(frames[0], "upper_gi", "Is there active bleeding?")
    assert result.ok, result.error
    assert result.question == "Is there active bleeding?"
    assert result.frame_id == frames[0].frame_id
    assert result.provenance.prompt_version == CLARIFY_PROMPT_VERSION
    assert result.provenance.generation_params["max_new_tokens"] == max_new_tokens_for("clarify")
    assert 0 <= result.answer.confidence <= 1


def test_a_cut_off_answer_is_a_failed_result_not_a_finding(reference_config, frames):
    config = EngineConfig(backend="demo", model=reference_config.model, max_new_tokens=8, engine="reference")
    [result] = get_analyzer(config).analyze(frames[:1], "colonoscopy")
    assert result.ok is False and result.analysis is None
    assert "cut off at max_new_tokens=8" in result.error
    assert result.raw_output  # kept for review


def test_each_schema_is_compiled_once(reference_analyzer, frames):
    reference_analyzer.analyze(frames[:1], "other")
    compiled = reference_analyzer.grammars.compile_count
    reference_analyzer.analyze(frames[:2], "other")
    reference_analyzer.analyze(frames[:1], "other")
    assert reference_analyzer.grammars.compile_count == compiled


def test_the_grammar_covers_the_models_vocab_size(reference_analyzer):
    assert reference_analyzer.grammars.tokenizer_info.vocab_size == reference_analyzer.model.config.text_config.vocab_size


def test_bad_input_is_refused_before_generation(reference_analyzer):
    with pytest.raises(ValueError, match="Unknown procedure type"):
        reference_analyzer.analyze(make_frames(1), "cystoscopy")
    with pytest.raises(ValueError, match="HxWx3"):
        reference_analyzer.analyze([FrameInput(image=np.zeros((10, 10), np.uint8), timestamp_ms=0)], "other")
    with pytest.raises(ValueError, match="empty"):
        reference_analyzer.clarify(make_frames(1)[0], "other", "   ")
    assert reference_analyzer.analyze([], "other") == []


# ------------------------------------------------------------------ OOM handling


@pytest.fixture
def fresh_analyzer(reference_config):
    # Not from the registry: the OOM tests change the analyzer's remembered batch size.
    return TransformersAnalyzer(reference_config, model_location=reference_config.model, backend_name="demo",
                                cpu_threads=1)


def _oom_above(analyzer, monkeypatch, limit):
    sizes = []
    original = analyzer.model.generate

    def generate(**kwargs):
        size = kwargs["input_ids"].shape[0]
        sizes.append(size)
        if size > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. (simulated)")
        return original(**kwargs)

    monkeypatch.setattr(analyzer.model, "generate", generate)
    return sizes


def test_cuda_oom_halves_the_batch_down_to_one(fresh_analyzer, monkeypatch):
    frames = make_frames(4, seed=11)
    reference = [fresh_analyzer.analyze([f], "colonoscopy")[0].raw_output for f in frames]
    sizes = _oom_above(fresh_analyzer, monkeypatch, limit=1)

    results = fresh_analyzer.analyze(frames, "colonoscopy")
    assert sizes == [4, 2, 1, 1, 1, 1]
    assert [r.raw_output for r in results] == reference
    assert all(r.ok for r in results)

    # The smaller size is remembered: no more failed attempts on the next call.
    sizes.clear()
    fresh_analyzer.analyze(frames[:2], "colonoscopy")
    assert sizes == [1, 1]


def test_cuda_oom_stops_halving_where_the_batch_fits(fresh_analyzer, monkeypatch):
    sizes = _oom_above(fresh_analyzer, monkeypatch, limit=2)
    results = fresh_analyzer.analyze(make_frames(4), "other")
    assert sizes == [4, 2, 2]
    assert len(results) == 4


def test_oom_on_a_single_frame_raises_out_of_memory(fresh_analyzer, monkeypatch):
    _oom_above(fresh_analyzer, monkeypatch, limit=0)
    with pytest.raises(OutOfMemory, match="single frame"):
        fresh_analyzer.analyze(make_frames(2), "other")


def test_latency_is_the_batch_time_split_over_its_frames(reference_analyzer):
    assert split_latency_ms(2.0, 4) == 500
    assert split_latency_ms(0.0104, 1) == 10
    frames = make_frames(4)
    started = time.perf_counter()
    results = reference_analyzer.analyze(frames, "other")
    wall_ms = (time.perf_counter() - started) * 1000
    latencies = {r.provenance.latency_ms for r in results}
    assert len(latencies) == 1  # one batch, one shared per-frame figure
    assert 0 < latencies.pop() * len(frames) <= wall_ms + len(frames)
