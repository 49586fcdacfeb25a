"""Device-side preprocessing reproduces Gemma 3's Hugging Face image processor exactly."""

import numpy as np
import pytest
import torch
from PIL import Image

from analysis.engine.demo_model import gemma3_image_processor
from analysis.engine.fast.preprocess import ImagePreprocessor

SIZES = [(100, 120), (64, 64), (480, 640), (37, 1000), (896, 896), (1080, 1920), (50, 50), (896, 504), (3, 7)]


@pytest.mark.parametrize("target", [64, 896])
def test_pixel_values_equal_the_processors_bit_for_bit(target):
    processor = gemma3_image_processor(target)
    preprocess = ImagePreprocessor.for_processor(processor, torch.device("cpu"), torch.float32)
    rng = np.random.default_rng(target)
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in SIZES]
    # As the reference path hands them over: PIL images (a 3-pixel-high array would read
    # as channels-first to the processor).
    expected = processor(images=[Image.fromarray(f) for f in frames], return_tensors="pt")["pixel_values"]
    got = preprocess(frames)
    assert got.shape == expected.shape
    assert torch.equal(got, expected)


def test_frames_of_one_size_are_resized_together_in_order():
    processor = gemma3_image_processor(64)
    preprocess = ImagePreprocessor.for_processor(processor, torch.device("cpu"), torch.float32)
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in [(90, 120, 3), (40, 40, 3), (90, 120, 3)]]
    together = preprocess(frames)
    for index, frame in enumerate(frames):
        assert torch.equal(together[index], preprocess([frame])[0])


@pytest.mark.parametrize(
    "change, message",
    [({"do_pan_and_scan": True}, "pan and scan"), ({"resample": 0}, "bilinear"),
     ({"size": {"height": 64, "width": 32}}, "square")],
)
def test_settings_it_does_not_reproduce_are_refused(change, message):
    processor = gemma3_image_processor(64)
    for name, value in change.items():
        setattr(processor, name, value)
    with pytest.raises(ValueError, match=message):
        ImagePreprocessor.for_processor(processor, torch.device("cpu"), torch.float32)
