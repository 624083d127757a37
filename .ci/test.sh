#!/usr/bin/env bash
# The README's test command: installs what the suite needs when it can (.ci/prerequisites.sh: apt packages
# as root or with sudo, the MLflow and reference venvs; a prerequisite it cannot install is named in one
# line and fails only the tests that need it), then runs the suite with a real MLflow server up for the
# whole run (.ci/mlflow-ci.sh). The SLURM tests start their own one-node clusters (.ci/slurm.sh).
# Extra arguments go to vitest (e.g. a test folder).
set -euo pipefail
cd "$(dirname "$0")/.."
missing="$(mktemp "${TMPDIR:-/tmp}/sardine-prerequisites-XXXXXX")"
trap 'rm -f "$missing"' EXIT
bash .ci/prerequisites.sh "$missing"
set -a
# shellcheck source=/dev/null
source "$missing"
set +a
status=0
if [[ -n "${SARDINE_MISSING_MLFLOW:-}" ]]; then
  bash .ci/test-lanes.sh "$@" || status=$?
else
  bash .ci/mlflow-ci.sh bash .ci/test-lanes.sh "$@" || status=$?
fi
exit "$status"
