#!/bin/sh
# make gpu-check: run gpucheck/run.py with the Python that has the agent.
# Here, that is the project's .venv. On a CUDA machine without it (Python with a CUDA
# torch, no diffusers), the agent and its dependencies are installed from the wheels
# `make gpu-check-wheels` put in gpucheck/wheels/, with no index.
set -eu
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ]; then
  exec .venv/bin/python gpucheck/run.py "$@"
fi
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c "import diffusers, klein_bench" 2>/dev/null; then
  [ -d gpucheck/wheels ] || { echo "No .venv and no gpucheck/wheels: run make gpu-check-wheels first." >&2; exit 2; }
  "$PYTHON" -m pip install --quiet --no-index --find-links gpucheck/wheels --no-deps gpucheck/wheels/*.whl
  "$PYTHON" -m pip install --quiet --no-index --find-links gpucheck/wheels --no-deps -e ./agent
fi
exec "$PYTHON" gpucheck/run.py "$@"
