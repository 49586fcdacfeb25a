#!/usr/bin/env bash
# GPU-shape latency and memory benchmarks: a random-weight model with MedGemma-4B's exact
# architecture, bf16 on CUDA, through the engine's real path (processor + xgrammar +
# generate). No downloads. Small iteration counts: about 2-4 minutes on an H100/H200,
# well inside 6.
#
#   bash benchmarks/gpu_run.sh            # results in ${OUT:-benchmarks/results}
#   PYTHON=/path/to/python bash benchmarks/gpu_run.sh
set -u -o pipefail
cd "$(dirname "$0")/.."

OUT_DIR="${OUT:-benchmarks/results}"
mkdir -p "$OUT_DIR"
if [ -n "${PYTHON:-}" ]; then
    PY="$PYTHON"
elif [ -x .venv/bin/python ]; then
    PY=.venv/bin/python
else
    PY=python3
fi
# A per-run cache for the demo tokenizer build, so nothing outside the run is touched.
export MEDVISION_DEMO_MODEL_DIR="${MEDVISION_DEMO_MODEL_DIR:-${TMPDIR:-/tmp}/medvision-demo-gemma3}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
export TOKENIZERS_PARALLELISM=false

echo "== python: $PY ($("$PY" --version 2>&1))"
"$PY" - <<'PYCHECK'
import importlib, sys
needed = {  # import name -> pip name
    "torch": "torch", "transformers": "transformers>=5,<6", "xgrammar": "xgrammar>=0.2",
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
    print("MISSING PYTHON PACKAGES - install these, then rerun:\n" + "\n".join(missing), file=sys.stderr)
    sys.exit(3)
import torch
if not torch.cuda.is_available():
    print(f"torch {torch.__version__} sees no CUDA GPU (built for CUDA {torch.version.cuda}); "
          "the gpu-shape benchmarks need one.", file=sys.stderr)
    sys.exit(4)
import transformers, xgrammar  # noqa: E401
if int(transformers.__version__.split(".")[0]) < 5:
    print(f"transformers {transformers.__version__} is too old: the demo tokenizer build uses the "
          "transformers 5 tokenizer API - pip install 'transformers>=5,<6'", file=sys.stderr)
    sys.exit(3)
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), transformers {transformers.__version__}, "
      f"GPU {torch.cuda.get_device_name(0)}")
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

status=0
echo "== latency (gpu shape)"
timeout 240 "$PY" benchmarks/run_latency_test.py --gpu-shape --device cuda \
    --batch-sizes 1,4,8 --iterations 3 --warmup 1 --max-new-tokens 64 --out "$OUT_DIR" || status=$?
echo "== memory (gpu shape)"
timeout 150 "$PY" benchmarks/run_memory_test.py --gpu-shape --device cuda \
    --batch-sizes 1,4,8 --max-new-tokens 64 --out "$OUT_DIR" || status=$?
echo "== done (exit $status); results in $OUT_DIR"
exit $status
