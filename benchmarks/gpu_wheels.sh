#!/usr/bin/env bash
# Download, into .whl/ (ignored by git), the wheels the GPU benchmark needs that the GPU
# machine's image lacks or has in another version, at exactly the versions of this
# checkout's virtualenv, for the machine's Python 3.12 on x86-64. Run it here (the GPU
# machine has no network), then carry .whl with the run (benchmarks/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
PY=${PYTHON:-.venv/bin/python}
packages=(xgrammar apache-tvm-ffi transformers tokenizers huggingface-hub pydantic pydantic-core annotated-types
          typing-inspection typing-extensions)
pins=()
for package in "${packages[@]}"; do
  pins+=("$package==$("$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$package")")
done
rm -rf .whl && mkdir -p .whl
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${pins[@]}"
ls -la .whl && du -sh .whl
