"""What exactly was loaded: a revision string for provenance."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")

_cache: dict[tuple, str] = {}
_lock = threading.Lock()


def weights_sha256(directory: str | Path) -> str:
    """``sha256:<hex>`` over the weight files of a local model directory (names and
    contents, in name order), so two directories with the same weights hash the same.

    Reading 8 GB of MedGemma weights takes seconds; the result is cached per process,
    keyed by the files' names, sizes and modification times.
    """
    root = Path(directory)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))
    if not files:
        raise FileNotFoundError(f"No weight files ({', '.join(WEIGHT_SUFFIXES)}) in {root}.")
    key = tuple((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    with _lock:
        if key in _cache:
            return _cache[key]
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(8 * 1024 * 1024), b""):
                digest.update(chunk)
    value = f"sha256:{digest.hexdigest()}"
    with _lock:
        _cache[key] = value
    return value


def model_revision(location: str, requested: str | None, loaded_config: Any = None) -> str:
    """The revision to record: the one asked for; else the weights hash of a local
    directory; else the hub commit transformers resolved (``config._commit_hash``)."""
    if requested:
        return requested
    if Path(location).is_dir():
        return weights_sha256(location)
    commit = getattr(loaded_config, "_commit_hash", None)
    return f"commit:{commit}" if commit else "unpinned"
