"""FastAnalyzer: configuration, fallbacks (never a lost frame), warm-up and the step-wise API."""

import logging

import numpy as np
import pytest
import torch

from analysis.engine import AnalyzerUnavailable, EngineConfig, FrameInput, get_analyzer
from analysis.engine.backends.fast_backend import FastAnalyzer
from analysis.engine.backends.transformers_backend import TransformersAnalyzer
from analysis.engine.fast import model as fast_model
from analysis.engine.registry import local_analyzer

from ..conftest import make_frames


def test_the_default_engine_is_the_fast_one(demo_analyzer):
    assert isinstance(demo_analyzer, FastAnalyzer) and demo_analyzer.engine_name == "fast"
    [result] = demo_analyzer.analyze(make_frames(1), "colonoscopy", "live")
    params = result.provenance.generation_params
    assert result.ok
    assert params["engine"].startswith("fast") and params["jump_forward"] is True and params["prefix_cache"] is True
    assert params["forward_passes"] >= 1 and params["decisions"] >= 1
    assert params["cuda_graphs"] is False  # CPU
    assert result.provenance.prompt_version == "live-v1"
    assert result.provenance.is_demo


def test_engine_reference_selects_generate(reference_analyzer):
    assert isinstance(reference_analyzer, TransformersAnalyzer) and reference_analyzer.engine_name == "reference"


def _unsupported(monkeypatch):
    def refuse(model):
        raise fast_model.UnsupportedModel("the fast path does not reproduce: architecture SomethingElse")

    monkeypatch.setattr(fast_model, "_gemma3_parts", refuse)


def test_a_model_it_does_not_reproduce_runs_on_the_reference_path(reference_config, monkeypatch, caplog):
    _unsupported(monkeypatch)
    reference = TransformersAnalyzer(reference_config, model_location=reference_config.model, backend_name="demo",
                                     cpu_threads=1)
    with caplog.at_level(logging.WARNING, logger="analysis.engine.backends.fast_backend"):
        analyzer = FastAnalyzer(reference)
    assert analyzer.engine_name == "reference"
    assert "Fast engine unavailable" in caplog.text and "SomethingElse" in caplog.text
    frames = make_frames(2, seed=2)
    assert [r.raw_output for r in analyzer.analyze(frames, "other")] == \
        [r.raw_output for r in reference.analyze(frames, "other")]


def test_asking_for_the_fast_engine_on_such_a_model_is_a_clear_error(demo_model_dir, monkeypatch):
    _unsupported(monkeypatch)
    config = EngineConfig(backend="demo", model=str(demo_model_dir), engine="fast")
    reference = TransformersAnalyzer(config, model_location=config.model, backend_name="demo", cpu_threads=1)
    with pytest.raises(AnalyzerUnavailable, match="ANALYZER_ENGINE=fast.*SomethingElse"):
        local_analyzer(reference)


def test_sampling_stays_on_the_reference_path(demo_model_dir):
    analyzer = get_analyzer(EngineConfig(backend="demo", model=str(demo_model_dir), do_sample=True, seed=3))
    [result] = analyzer.analyze(make_frames(1), "colonoscopy")
    assert result.provenance.generation_params["engine"].startswith("reference")


@pytest.fixture
def fresh_fast(demo_model_dir):
    # Not from the registry: these tests change the analyzer's row limit.
    config = EngineConfig(backend="demo", model=str(demo_model_dir), engine="fast", jump_forward=False, batch_size=4)
    reference = TransformersAnalyzer(config, model_location=config.model, backend_name="demo", cpu_threads=1)
    return FastAnalyzer(reference)


def _oom_above(analyzer, monkeypatch, limit):
    """Simulate CUDA running out of memory whenever more than ``limit`` rows decode."""
    decoder = analyzer.decoder
    sizes = []
    original = decoder.step

    def step():
        sizes.append(len(decoder.rows))
        if len(decoder.rows) > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. (simulated)")
        return original()

    monkeypatch.setattr(decoder, "step", step)
    return sizes


def test_out_of_memory_halves_the_rows_and_loses_no_frame(fresh_fast, reference_analyzer, monkeypatch, caplog):
    frames = make_frames(4, seed=6)
    expected = [r.raw_output for r in reference_analyzer.analyze(frames, "colonoscopy")]
    sizes = _oom_above(fresh_fast, monkeypatch, limit=1)
    with caplog.at_level(logging.WARNING, logger="analysis.engine.backends.fast_backend"):
        results = fresh_fast.analyze(frames, "colonoscopy")
    assert [r.raw_output for r in results] == expected
    assert max(sizes) == 4 and fresh_fast._row_limit == 1
    assert "out of memory with 4 rows" in caplog.text and "retrying with 2" in caplog.text


def test_out_of_memory_with_one_row_falls_back_to_the_reference(fresh_fast, reference_analyzer, monkeypatch, caplog):
    frames = make_frames(2, seed=7)
    expected = [r.raw_output for r in reference_analyzer.analyze(frames, "upper_gi", "live")]
    _oom_above(fresh_fast, monkeypatch, limit=0)
    with caplog.at_level(logging.WARNING, logger="analysis.engine.backends.fast_backend"):
        results = fresh_fast.analyze(frames, "upper_gi", "live")
    assert [r.raw_output for r in results] == expected
    assert all("out of memory" in r.provenance.generation_params["engine"] for r in results)
    assert "using the reference path" in caplog.text


def test_an_error_in_the_fast_path_is_logged_and_answered_by_the_reference(fresh_fast, reference_analyzer,
                                                                           monkeypatch, caplog):
    frames = make_frames(3, seed=9)
    expected = [r.raw_output for r in reference_analyzer.analyze(frames, "bronchoscopy")]

    def broken():
        raise RuntimeError("a kernel went wrong")

    monkeypatch.setattr(fresh_fast.decoder, "step", broken)
    with caplog.at_level(logging.ERROR, logger="analysis.engine.backends.fast_backend"):
        results = fresh_fast.analyze(frames, "bronchoscopy")
    assert [r.raw_output for r in results] == expected
    assert "Fast engine step failed" in caplog.text and "a kernel went wrong" in caplog.text
    assert fresh_fast.decoder.rows == []


def test_bad_input_is_refused_before_any_work(demo_analyzer):
    with pytest.raises(ValueError, match="HxWx3"):
        demo_analyzer.analyze([FrameInput(image=np.zeros((10, 10), np.uint8), timestamp_ms=0)], "other")
    with pytest.raises(ValueError, match="Unknown procedure type"):
        demo_analyzer.analyze(make_frames(1), "cystoscopy")
    with pytest.raises(ValueError, match="'frame' .* or 'live'"):
        demo_analyzer.analyze(make_frames(1), "other", "clarify")
    with pytest.raises(ValueError, match="empty"):
        demo_analyzer.clarify(make_frames(1)[0], "other", "  ")
    assert demo_analyzer.analyze([], "other") == []


def test_each_frame_reports_its_own_latency(demo_analyzer):
    import time

    started = time.perf_counter()
    results = demo_analyzer.analyze(make_frames(4, seed=4), "other", "live")
    wall_ms = (time.perf_counter() - started) * 1000
    assert all(0 <= r.provenance.latency_ms <= wall_ms + 1 for r in results)


def test_the_batcher_admits_frames_while_others_decode(demo_analyzer):
    batcher = demo_analyzer.batcher()
    frames = make_frames(3, seed=13)
    first = batcher.submit(frames[0], "colonoscopy", "frame")
    results = batcher.step()
    later = [batcher.submit(frames[1], "colonoscopy", "live"), batcher.submit(frames[2], "other", "clarify", "Why?")]
    while not batcher.idle:
        results.update(batcher.step())
    assert set(results) == {first, *later}
    assert results[first].ok and results[later[0]].ok
    assert results[later[1]].question == "Why?"
    alone = demo_analyzer.analyze([frames[1]], "colonoscopy", "live")[0]
    assert results[later[0]].raw_output == alone.raw_output


def test_warm_up_logs_what_it_did_and_compiled_grammars_survive_a_restart(demo_model_dir, tmp_path, caplog):
    config = EngineConfig(backend="demo", model=str(demo_model_dir), engine="fast", grammar_cache_dir=str(tmp_path))
    with caplog.at_level(logging.INFO, logger="analysis.engine.backends.fast_backend"):
        first = get_analyzer(config)
    assert "Analyzer warm-up (fast engine) took" in caplog.text
    assert first.grammars.compile_count == 12 and len(list(tmp_path.glob("*.json"))) == 12
    assert len(first.decoder.prefixes._prefixes) == 12

    restarted = TransformersAnalyzer(config, model_location=config.model, backend_name="demo", cpu_threads=1)
    report = restarted.warm_up()
    assert report["grammars"]["loaded_from_disk"] == 12 and restarted.grammars.compile_count == 0
    frames = make_frames(2, seed=1)
    assert [r.raw_output for r in FastAnalyzer(restarted).analyze(frames, "upper_gi")] == \
        [r.raw_output for r in first.analyze(frames, "upper_gi")]


def test_a_damaged_grammar_file_is_compiled_again(demo_model_dir, tmp_path, caplog):
    config = EngineConfig(backend="demo", model=str(demo_model_dir), engine="reference",
                          grammar_cache_dir=str(tmp_path), warm_up=False)
    TransformersAnalyzer(config, model_location=config.model, backend_name="demo").warm_up()
    for path in tmp_path.glob("*.json"):
        path.write_text("{not json")
    again = TransformersAnalyzer(config, model_location=config.model, backend_name="demo")
    with caplog.at_level(logging.WARNING, logger="analysis.engine.grammar"):
        report = again.warm_up()
    assert report["grammars"]["compiled"] == 12 and "unusable" in caplog.text
    [result] = again.analyze(make_frames(1), "other", "live")
    assert result.ok


def test_two_threads_sharing_the_analyzer_take_turns_with_its_rows(demo_analyzer):
    # The embedded worker runs two threads: a frame batch and a voice question at once must
    # not step each other's rows in the one decoder (each batcher numbers its own tickets).
    import threading

    alone_frames = demo_analyzer.analyze(make_frames(2, seed=9), "colonoscopy", "live")
    alone_answer = demo_analyzer.clarify(make_frames(1, seed=10)[0], "colonoscopy", "Is there a polyp?")
    outcomes, errors = {}, []

    def frames():
        try:
            outcomes["frames"] = demo_analyzer.analyze(make_frames(2, seed=9), "colonoscopy", "live")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def question():
        try:
            outcomes["answer"] = demo_analyzer.clarify(make_frames(1, seed=10)[0], "colonoscopy", "Is there a polyp?")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=frames), threading.Thread(target=question)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert [r.raw_output for r in outcomes["frames"]] == [r.raw_output for r in alone_frames]
    assert outcomes["answer"].raw_output == alone_answer.raw_output
