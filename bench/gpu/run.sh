#!/usr/bin/env bash
# The GPU bench as one command (bench/gpu/README.md): installs the wheels carried in bench/gpu/.wheels (diffusers:
# fetch-wheels.sh downloads them) into a temporary folder ahead on PYTHONPATH, then runs bench.py.
#
#   bash bench/gpu/run.sh [--tiny] [--out DIR] [bench.py's options]
#
# --out defaults to $OUT (the device machine's result folder) when set, else bench/.work/gpu. SARDINE_PYTHON names
# the Python (default python3: the one with torch on the GPU machine).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
python=${SARDINE_PYTHON:-python3}
if compgen -G "$here/.wheels/*.whl" >/dev/null; then
  site=$(mktemp -d "${TMPDIR:-/tmp}/sardine-bench-site.XXXXXX")
  trap 'rm -rf "$site"' EXIT
  echo "installing $(ls "$here/.wheels" | tr '\n' ' ')into $site" >&2
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" "$here"/.wheels/*.whl
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
if ! "$python" -c "import torch, diffusers, transformers, peft, accelerate, safetensors" 2>/dev/null; then
  echo "$python lacks one of torch, diffusers, transformers, peft, accelerate, safetensors: carry their wheels in bench/gpu/.wheels (bash bench/gpu/fetch-wheels.sh)" >&2
  exit 1
fi
"$python" "$here/bench.py" --out "${OUT:-$repo/bench/.work/gpu}" "$@"
