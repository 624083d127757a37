#!/usr/bin/env bash
# Downloads, on a machine that reaches PyPI, the wheels the GPU machine lacks into bench/gpu/.wheels (git-ignored;
# the device run names it in `carry`, and run.sh installs what it holds). The GPU machine's image has Python 3.12
# with torch, transformers, accelerate, peft, safetensors, huggingface-hub and numpy, but not diffusers
# (the device notes' package list); diffusers' needs are all there (its importlib_metadata requirement is for Python < 3.8).
# The pip line is the device README's: wheels only, for CPython 3.12 on x86-64 Linux, no dependencies resolved.
#
#   bash bench/gpu/fetch-wheels.sh [python]        (python: one with pip; default .venv/bin/python, else python3)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
python=${1:-$([ -x "$repo/.venv/bin/python" ] && echo "$repo/.venv/bin/python" || echo python3)}
# diffusers as adapters/torch/requirements.txt pins it.
wheels=("diffusers==$(sed -n 's/^diffusers==//p' "$repo/adapters/torch/requirements.txt")")
rm -rf "$here/.wheels"
"$python" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$here/.wheels" "${wheels[@]}"
du -sh "$here/.wheels"
