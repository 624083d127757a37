#!/usr/bin/env bash
# Creates .venv/ with the reference libraries pinned in tools/requirements.txt.
# PyPI's torch wheel pulls several GB of CUDA libraries; that is fine for tools/ and bench/, which
# only run on developer machines, never in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${SARDINE_REFERENCE_VENV:-.venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q -r tools/requirements.txt
echo "reference environment ready: $venv/bin/python"
