import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def demo_model_dir():
    """The real demo model, built once and reused across runs (it is deterministic)."""
    from analysis.engine import ensure_demo_model

    path = Path(os.environ.get("MEDVISION_TEST_MODEL_DIR", ROOT / "var" / "test-cache" / "demo-gemma3"))
    ensure_demo_model(str(path))
    return str(path)
