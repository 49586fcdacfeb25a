"""Fixtures for the engine tests: one demo model per test session, built offline."""

from __future__ import annotations

import ipaddress
import os
import socket

# Set before anything imports transformers / huggingface_hub: no hub traffic, ever.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import numpy as np
import pytest
from PIL import Image

from analysis.engine import EngineConfig, FrameInput, build_demo_model, get_analyzer


def _is_loopback(address) -> bool:
    if isinstance(address, tuple) and address:
        host = address[0]
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return host == "localhost"
    return True  # unix sockets


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch):
    """Engine tests may only talk to servers they start on this machine."""
    original = socket.socket.connect

    def guarded(self, address):
        if not _is_loopback(address):
            raise AssertionError(f"engine test tried to reach {address!r}; loopback only")
        return original(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(scope="session")
def demo_model_dir(tmp_path_factory):
    return build_demo_model(tmp_path_factory.mktemp("demo") / "medvision-demo")


@pytest.fixture(scope="session")
def demo_config(demo_model_dir) -> EngineConfig:
    return EngineConfig(backend="demo", model=str(demo_model_dir), batch_size=4)


@pytest.fixture
def demo_analyzer(demo_config):
    # Function-scoped on purpose: tests of reset_analyzers() close cached analyzers, and
    # get_analyzer() reloads (cheaply) when that happened.
    return get_analyzer(demo_config)


@pytest.fixture(scope="session")
def reference_config(demo_model_dir) -> EngineConfig:
    """The Hugging Face generate path (what the fast engine must reproduce)."""
    return EngineConfig(backend="demo", model=str(demo_model_dir), batch_size=4, engine="reference")


@pytest.fixture
def reference_analyzer(reference_config):
    return get_analyzer(reference_config)


def make_frames(count: int, seed: int = 0) -> list[FrameInput]:
    """Distinct random frames of mixed sizes, numpy and PIL."""
    rng = np.random.default_rng(seed)
    frames = []
    for index in range(count):
        height, width = [(120, 160), (96, 96), (240, 320), (64, 200)][index % 4]
        array = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        image = Image.fromarray(array) if index % 2 else array
        frames.append(FrameInput(image=image, timestamp_ms=1000 * index, frame_id=f"frame-{index}"))
    return frames


@pytest.fixture
def frames() -> list[FrameInput]:
    return make_frames(4)
