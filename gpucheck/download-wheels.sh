#!/bin/sh
# make gpu-check-wheels: everything the GPU machine lacks (it has Python 3.12 and a CUDA
# torch, and no internet) as wheels in gpucheck/wheels/, to carry there. torch itself is
# left out: the dependency that would pull it (accelerate) is fetched without its own.
set -eu
cd "$(dirname "$0")"
PY=${GPU_CHECK_PYTHON_VERSION:-3.12}
PIP="${PIP:-../.venv/bin/pip}"
[ -x "$PIP" ] || PIP="python3 -m pip"
mkdir -p wheels
common="--dest wheels --only-binary=:all: --python-version $PY --implementation cp
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
  --platform manylinux2014_x86_64 --platform linux_x86_64 --platform any"
# shellcheck disable=SC2086
$PIP download $common "diffusers==0.42.1" "transformers>=4.51" "tokenizers>=0.21" \
  "safetensors" "huggingface-hub" "pillow>=10" "numpy>=1.26" "torchao>=0.14" \
  "httpx>=0.27" "cryptography>=42" "rfc8785>=0.1.4" "click>=8.1" "rich>=13" \
  "nvidia-ml-py>=12" "platformdirs>=4" "psutil>=5.9" "packaging>=23" "pyyaml"
# shellcheck disable=SC2086
$PIP download $common --no-deps "accelerate>=1.0"
# The device tool carries at most 64 MiB. hf_xet only speeds up hub downloads, which the
# check (random weights, no internet) never makes.
rm -f wheels/hf_xet-*.whl
du -sh wheels
