#!/usr/bin/env bash
# Runs a command with a real MLflow server up: installs the pinned mlflow (.ci/mlflow-requirements.txt) into
# its venv, starts `mlflow server` (SQLite + artifact folder in a temp dir) on a free port, exports
# MLFLOW_TEST_URI and MLFLOW_VENV, runs the command, stops the server and exits with the command's status.
#
#   bash .ci/mlflow-ci.sh                     # the MLflow tests: npx vitest run test/mlflow
#   bash .ci/mlflow-ci.sh npx vitest run      # the whole suite with the server up
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export MLFLOW_VENV="${MLFLOW_VENV:-$repo/.venv-mlflow}"
server="$repo/.ci/mlflow-server.sh"

bash "$server" install
dir="$(mktemp -d "${TMPDIR:-/tmp}/sardine-mlflow-ci-XXXXXX")"
port="$("$MLFLOW_VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cleanup() {
  bash "$server" stop "$dir" "$port" || true
  rm -rf "$dir"
}
trap cleanup EXIT
bash "$server" start "$dir" "$port"
export MLFLOW_TEST_URI="http://127.0.0.1:$port"

if [[ $# -eq 0 ]]; then
  set -- npx vitest run test/mlflow
fi
cd "$repo"
status=0
"$@" || status=$?
exit "$status"
