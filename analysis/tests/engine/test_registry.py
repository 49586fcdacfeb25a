import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from analysis.engine import (
    AnalyzerUnavailable,
    EngineConfig,
    get_analyzer,
    registry,
    reset_analyzers,
)
from analysis.engine.images import to_jpeg_data_url, to_pil_rgb

from .conftest import make_frames


def test_importing_the_engine_loads_no_model_library():
    code = (
        "import sys, analysis.engine; "
        "heavy = [m for m in ('torch', 'transformers', 'xgrammar', 'openai', 'django') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_one_analyzer_per_configuration(demo_config):
    first = get_analyzer(demo_config)
    assert get_analyzer(EngineConfig(**demo_config.__dict__)) is first
    other = get_analyzer(EngineConfig(**{**demo_config.__dict__, "batch_size": 2}))
    assert other is not first


def test_reset_closes_cached_analyzers(demo_config):
    first = get_analyzer(demo_config)
    reset_analyzers()
    assert first.model is None  # closed
    with pytest.raises(AnalyzerUnavailable, match="closed"):
        first.analyze(make_frames(1), "other")
    assert get_analyzer(demo_config) is not first


def test_a_forked_child_does_not_reuse_the_parents_analyzers(demo_config, monkeypatch):
    parent = get_analyzer(demo_config)
    monkeypatch.setattr(registry, "_owner_pid", -1)  # as if we were a fork of another process
    child = get_analyzer(demo_config)
    assert child is not parent
    assert parent.model is not None  # not closed: it belongs to the parent


def test_a_missing_local_model_is_reported_as_unavailable(tmp_path):
    empty = tmp_path / "no-model"
    empty.mkdir()
    with pytest.raises(AnalyzerUnavailable, match="Could not load the model"):
        get_analyzer(EngineConfig(backend="transformers", model=str(empty), device="cpu"))


def test_cuda_without_a_gpu_is_a_clear_error(demo_config):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(AnalyzerUnavailable, match="no CUDA GPU"):
        get_analyzer(EngineConfig(backend="demo", model=demo_config.model, device="cuda"))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"backend": "tensorflow"}, "Unknown analyzer backend"),
        ({"device": "tpu"}, "Unknown device"),
        ({"batch_size": 0}, "batch_size"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
    ],
)
def test_bad_configuration_is_refused_with_its_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EngineConfig(**kwargs)


def test_the_api_key_stays_out_of_reprs():
    config = EngineConfig(backend="openai_compatible", openai_base_url="http://127.0.0.1:1/v1",
                          openai_model="m", openai_api_key="sk-secret")
    assert "sk-secret" not in repr(config)


def test_images_are_accepted_as_rgb_arrays_or_any_pil_image():
    array = np.zeros((4, 6, 3), np.uint8)
    assert to_pil_rgb(array).size == (6, 4)
    assert to_pil_rgb(Image.new("L", (5, 5))).mode == "RGB"
    assert to_jpeg_data_url(array).startswith("data:image/jpeg;base64,")
    for bad, message in [
        (np.zeros((4, 6), np.uint8), "HxWx3"),
        (np.zeros((4, 6, 3), np.float32), "uint8"),
        (np.zeros((0, 6, 3), np.uint8), "empty"),
        ("frame.jpg", "numpy array or a PIL image"),
    ]:
        with pytest.raises(ValueError, match=message):
            to_pil_rgb(bad)
