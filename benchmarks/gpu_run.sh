#!/usr/bin/env bash
# Every GPU measurement of the analyzer in ONE command, well inside 8 minutes on an
# H100/H200, with no network: the fast engine on a random-weight model with MedGemma-4B's
# exact shape (bf16), against the reference path on the same model, written phase by phase
# to ${OUT:-benchmarks/results}/gpu_engine.json (benchmarks/run_gpu_engine_test.py).
#
#   bash benchmarks/gpu_run.sh                 # results in ${OUT:-benchmarks/results}
#   PYTHON=/path/to/python bash benchmarks/gpu_run.sh
#
# Missing packages travel as wheels in .whl/ (made by benchmarks/gpu_wheels.sh here); when
# .whl/ exists they are installed into /tmp/site first.
set -u -o pipefail
cd "$(dirname "$0")/.."

OUT_DIR="${OUT:-benchmarks/results}"
mkdir -p "$OUT_DIR"
if [ -n "${PYTHON:-}" ]; then
    PY="$PYTHON"
elif [ -x .venv/bin/python ] && .venv/bin/python -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
    PY=.venv/bin/python
else
    PY=python3
fi
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    echo "== installing carried wheels into /tmp/site"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "== wheel install failed" >&2; exit 3; }
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
# A per-run cache for the demo tokenizer build, so nothing outside the run is touched.
export MEDVISION_DEMO_MODEL_DIR="${MEDVISION_DEMO_MODEL_DIR:-${TMPDIR:-/tmp}/medvision-demo-gemma3}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
export TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1

echo "== python: $PY ($("$PY" --version 2>&1))"
"$PY" - <<'PYCHECK'
import importlib, sys
needed = {  # import name -> pip name
    "torch": "torch", "transformers": "transformers>=5,<6", "xgrammar": "xgrammar>=0.2.9",
    "tokenizers": "tokenizers", "safetensors": "safetensors", "huggingface_hub": "huggingface_hub",
    "pydantic": "pydantic>=2.9", "PIL": "pillow", "numpy": "numpy", "jinja2": "jinja2",
}
missing = []
for module, pip_name in needed.items():
    try:
        importlib.import_module(module)
    except Exception as error:  # ImportError, or a broken install
        missing.append(f"  {module:16s} -> pip install '{pip_name}'   ({type(error).__name__}: {error})")
if missing:
    print("MISSING PYTHON PACKAGES - carry them as wheels (benchmarks/gpu_wheels.sh), then rerun:\n"
          + "\n".join(missing), file=sys.stderr)
    sys.exit(3)
import torch
if not torch.cuda.is_available():
    print(f"torch {torch.__version__} sees no CUDA GPU (built for CUDA {torch.version.cuda}); "
          "the gpu-shape benchmarks need one.", file=sys.stderr)
    sys.exit(4)
import transformers, xgrammar  # noqa: E401
from importlib.metadata import version
if int(transformers.__version__.split(".")[0]) < 5:
    print(f"transformers {transformers.__version__} is too old: pip install 'transformers>=5,<6'", file=sys.stderr)
    sys.exit(3)
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), transformers {transformers.__version__}, "
      f"xgrammar {version('xgrammar')}, GPU {torch.cuda.get_device_name(0)}")
try:
    import triton  # noqa: F401
except ImportError:
    print("note: triton not installed - the grammar mask uses xgrammar's torch kernel")
PYCHECK
check=$?
if [ $check -ne 0 ]; then
    echo "== import check failed (exit $check); nothing was run" >&2
    exit $check
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv

echo "== fast engine vs reference, MedGemma-4B shape (phases: build, warm-up, vision, prefill, live, memory, decode, batch 32)"
timeout 450 "$PY" benchmarks/run_gpu_engine_test.py --out "$OUT_DIR" 2>&1 | tee "$OUT_DIR/gpu_engine.log"
status=${PIPESTATUS[0]}
echo "== done (exit $status); results in $OUT_DIR"
exit $status
