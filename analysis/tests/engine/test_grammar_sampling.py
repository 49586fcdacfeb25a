"""Grammar robustness: random weights sampled at temperature 1 produce outputs as wild as
a model can, and every one must still parse and validate. (Production decoding is
greedy; sampling is switched on here only to get many different outputs.)"""

import zlib

import pytest

from analysis.engine import PROCEDURE_TYPES, EngineConfig, clarify_model, frame_model, get_analyzer

from .conftest import make_frames

SAMPLES_PER_PROCEDURE = 12


@pytest.fixture(scope="module")
def sampling_analyzer(demo_model_dir):
    config = EngineConfig(
        backend="demo",
        model=str(demo_model_dir),
        batch_size=SAMPLES_PER_PROCEDURE,
        do_sample=True,
        temperature=1.0,
        seed=1234,
    )
    return get_analyzer(config)


@pytest.mark.parametrize("procedure_type", PROCEDURE_TYPES)
def test_sampled_frame_answers_all_validate(sampling_analyzer, procedure_type):
    # zlib.crc32, not hash(): str hashes are salted per process, which made this flaky.
    frames = make_frames(SAMPLES_PER_PROCEDURE, seed=zlib.crc32(procedure_type.encode()) % 1000)
    results = sampling_analyzer.analyze(frames, procedure_type)
    assert len(results) == SAMPLES_PER_PROCEDURE
    for result in results:
        assert result.ok, f"{result.error}\n{result.raw_output}"
        assert frame_model(procedure_type).model_validate_json(result.raw_output) == result.analysis
        assert result.provenance.generation_params["do_sample"] is True
    # Sampling really explored: the answers differ, with and without findings.
    assert len({r.raw_output for r in results}) >= 3
    assert {r.analysis.no_finding for r in results} == {True, False}


@pytest.mark.parametrize("procedure_type", PROCEDURE_TYPES)
def test_sampled_clarify_answers_all_validate(sampling_analyzer, procedure_type):
    for frame in make_frames(2, seed=5):
        result = sampling_analyzer.clarify(frame, procedure_type, "What is at the top left?")
        assert result.ok, f"{result.error}\n{result.raw_output}"
        clarify_model(procedure_type).model_validate_json(result.raw_output)
