"""Shared plumbing for the scripts in ``benchmarks/``: building the analyzer under test,
synthetic frames, machine description, tables and JSON results. Not used by the app."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from analysis.engine.config import EngineConfig, default_demo_model_dir
from analysis.engine.types import FrameInput

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"


def cpu_model_name() -> str:
    try:
        output = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=False).stdout
        for line in output.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "cpu": cpu_model_name(),
        "cpu_cores": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": _version("transformers"),
        "xgrammar": _version("xgrammar"),
        "torch_cpu_threads": torch.get_num_threads(),
        # This project's machines are shared: a high load means noisy wall times.
        "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "gpu": None,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def random_frames(count: int, seed: int = 0, height: int = 480, width: int = 640) -> list[FrameInput]:
    """Noise frames at a typical endoscopy-tower capture size. Content does not change
    the cost: the processor resizes every frame to the model's input size."""
    rng = np.random.default_rng(seed)
    return [
        FrameInput(
            image=rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8),
            timestamp_ms=40 * index,
            frame_id=f"bench-{seed}-{index}",
        )
        for index in range(count)
    ]


def demo_dir(requested: str | None) -> str:
    from analysis.engine.demo_model import ensure_demo_model

    return str(ensure_demo_model(requested or default_demo_model_dir()))


def build_analyzer(
    *,
    gpu_shape: bool,
    device: str,
    batch_size: int,
    max_new_tokens: int | None,
    model_dir: str | None = None,
    do_sample: bool = False,
    temperature: float = 1.0,
    seed: int | None = None,
    engine: str = "auto",
):
    """The analyzer a benchmark measures: the demo model through ``get_analyzer`` (the
    production path), or the MedGemma-4B-shaped random model around the same class (the
    reference path; wrap it in ``FastAnalyzer`` for the fast engine)."""
    directory = demo_dir(model_dir)
    if gpu_shape:
        from .medgemma_shape import build_medgemma_shaped_analyzer

        config = EngineConfig(
            backend="transformers",
            model="",
            device=device,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            do_sample=do_sample,
            temperature=temperature,
            seed=seed,
        )
        return build_medgemma_shaped_analyzer(config, directory)
    from analysis.engine.registry import get_analyzer

    config = EngineConfig(
        backend="demo",
        model=directory,
        device=device,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        do_sample=do_sample,
        temperature=temperature,
        seed=seed,
        engine=engine,
    )
    return get_analyzer(config)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def text(cell: Any) -> str:
        if cell is None:
            return ""
        return f"{cell:.2f}" if isinstance(cell, float) else str(cell)

    rows = [[text(cell) for cell in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h)) for i, h in enumerate(headers)]
    lines = [
        " | ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)),
        "-|-".join("-" * w for w in widths),
        *(" | ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows),
    ]
    text = "\n".join(lines)
    print(text)
    return text


def write_results(name: str, payload: dict[str, Any], out: str | None = None) -> Path:
    """Write ``payload`` as ``<out or $OUT or benchmarks/results>/<name>.json``."""
    directory = Path(out or os.environ.get("OUT") or RESULTS_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    payload = {"benchmark": name, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **payload}
    with tempfile.NamedTemporaryFile("w", dir=directory, delete=False, suffix=".tmp") as handle:
        json.dump(payload, handle, indent=2, default=str)
    os.chmod(handle.name, 0o644)  # NamedTemporaryFile creates 0600
    os.replace(handle.name, path)
    print(f"\nwrote {path}")
    return path
