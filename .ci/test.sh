#!/usr/bin/env bash
# The test suite with the real services it needs, as the README's test command runs it:
# a real MLflow server (pinned mlflow in its own venv, installed on first use) for the whole run;
# the report tests drive Debian's chromium and the SLURM tests start a one-node cluster themselves
# (.ci/slurm.sh). Extra arguments go to vitest (e.g. a test folder).
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash .ci/mlflow-ci.sh npx vitest run "$@"
