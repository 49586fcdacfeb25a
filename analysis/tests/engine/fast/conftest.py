"""Fixtures for the fast engine's tests: the fast and reference paths on one demo model."""

from __future__ import annotations

import pytest
import torch

from analysis.engine import EngineConfig, get_analyzer
from analysis.engine.fast.decoder import Request


@pytest.fixture(scope="session")
def fast_config(demo_model_dir) -> EngineConfig:
    """Jump-forward off: token for token what the reference path writes."""
    return EngineConfig(backend="demo", model=str(demo_model_dir), batch_size=4, engine="fast", jump_forward=False)


@pytest.fixture
def fast_analyzer(fast_config):
    return get_analyzer(fast_config)


@pytest.fixture
def jump_analyzer(demo_model_dir):
    return get_analyzer(EngineConfig(backend="demo", model=str(demo_model_dir), batch_size=4, engine="fast",
                                     jump_forward=True))


def decode_rows(analyzer, frames, procedure_type, kind="frame", question=None):
    """Run frames through the analyzer's decoder directly; returns the finished rows in order."""
    from analysis.engine.backends.fast_backend import frame_array

    decoder = analyzer.decoder
    requests = [Request(image=frame_array(f.image), procedure_type=procedure_type, kind=kind, question=question,
                        tag=index) for index, f in enumerate(frames)]
    finished = {}
    with analyzer.reference._cpu_thread_limit():
        for row in decoder.admit(requests):
            if row.done:
                finished[row.request.tag] = row
        while decoder.rows:
            for row in decoder.step():
                finished[row.request.tag] = row
    return [finished[index] for index in range(len(frames))]


def reference_token_ids(reference, frames, procedure_type, kind="frame", question=None):
    """The reference path's generated token ids per frame, up to and including the stop token."""
    from analysis.engine.prompts import prompt_parts

    captured = []
    original = reference.model.generate

    def recording(**kwargs):
        output = original(**kwargs)
        captured.append(output[:, kwargs["input_ids"].shape[1]:].tolist())
        return output

    reference.model.generate = recording
    try:
        parts = prompt_parts(procedure_type, kind, question)
        list(reference._generate_chunks(frames, [parts] * len(frames), procedure_type, kind))
    finally:
        reference.model.generate = original
    rows = [row for chunk in captured for row in chunk]
    stops = set(reference.stop_token_ids)
    return [row[: next((i + 1 for i, t in enumerate(row) if t in stops), len(row))] for row in rows]


@pytest.fixture
def no_grad():
    with torch.inference_mode():
        yield
