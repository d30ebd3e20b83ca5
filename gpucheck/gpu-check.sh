#!/bin/sh
# make gpu-check: run gpucheck/run.py with the Python that has the agent.
# Here, that is the project's virtual environment (VENV_BIN, which make sets; .venv/bin
# by default). On a CUDA machine without it (Python with a CUDA
# torch, no diffusers), the agent and its dependencies are installed from the wheels
# `make gpu-check-wheels` put in gpucheck/wheels/, with no index.
set -eu
cd "$(dirname "$0")/.."
VENV_BIN=${VENV_BIN:-.venv/bin}
if [ -x "$VENV_BIN/python" ]; then
  exec "$VENV_BIN/python" gpucheck/run.py "$@"
fi
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c "import diffusers, klein_bench" 2>/dev/null; then
  [ -d gpucheck/wheels ] || { echo "No virtual environment and no gpucheck/wheels: run make gpu-check-wheels first." >&2; exit 2; }
  "$PYTHON" -m pip install --quiet --no-index --find-links gpucheck/wheels --no-deps gpucheck/wheels/*.whl
  "$PYTHON" -m pip install --quiet --no-index --find-links gpucheck/wheels --no-deps -e ./agent
fi
exec "$PYTHON" gpucheck/run.py "$@"
