#!/usr/bin/env bash
# What the test suite needs beyond `npm ci`, installed when it can be, each at most once:
#
#   apt packages (as root, or with passwordless sudo): python3 + python3-venv (the venvs below),
#     chromium (the report tests drive it), slurm-wlm slurmdbd munge mariadb-server openssh-server
#     openssh-client (the SLURM tests start a one-node cluster of them); dpkg's records say what is done.
#   the MLflow venv (.venv-mlflow; .ci/mlflow-requirements.txt), through .ci/mlflow-server.sh install.
#   the reference venv (.venv, or the interpreter SARDINE_PYTHON names; tools/requirements.txt: torch,
#     diffusers, transformers, …), through tools/setup-reference-env.sh. PyPI's torch brings several GB of
#     CUDA wheels: the first install takes minutes.
# Each venv keeps a marker with its requirements' hash, so a finished install is not redone and an
# interrupted one is. A prerequisite that cannot be installed gets one line on stderr, and
# `export SARDINE_MISSING_<NAME>=<that line>` in the file given as the first argument (test.sh sources
# it; test/support/prerequisites.ts fails the tests that need it with that line).
#
#   .ci/prerequisites.sh [<missing-file>] [--require-all]
#     --require-all: exit 1 when anything is missing (CI).
#   SARDINE_TEST_INSTALL=0: install nothing, only check.
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
missing_file=/dev/null
require_all=no
for arg in "$@"; do
  case "$arg" in
    --require-all) require_all=yes ;;
    *) missing_file="$arg" ;;
  esac
done
install="${SARDINE_TEST_INSTALL:-1}"
missing=0

# Records a prerequisite that is not there: one line for the user, one export for the tests (the first
# reason found for each prerequisite).
declare -A told=()
lacks() {
  local name="$1" line="$2"
  [[ -z "${told[$name]:-}" ]] || return 0
  told[$name]=1
  echo "prerequisite missing: $line" >&2
  printf 'export SARDINE_MISSING_%s=%q\n' "$name" "$line" >> "$missing_file"
  missing=1
}

# --- apt packages -------------------------------------------------------------------------------
declare -A packages_of=(
  [PYTHON]="python3 python3-venv"
  [CHROMIUM]="chromium"
  [SLURM]="slurm-wlm slurmdbd munge mariadb-server openssh-server openssh-client"
)
declare -A purpose_of=(
  [PYTHON]="Python 3 with venv, for the MLflow and reference venvs"
  [CHROMIUM]="chromium, which the report tests drive"
  [SLURM]="SLURM, munge, MariaDB and sshd, which the cluster tests run"
)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

sudo_prefix() {
  if [[ "$(id -u)" -eq 0 ]]; then echo ""; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then echo "sudo -n"; else return 1; fi
}

absent=()
for group in PYTHON CHROMIUM SLURM; do
  for package in ${packages_of[$group]}; do installed "$package" || absent+=("$package"); done
done
apt_problem=""
if [[ ${#absent[@]} -gt 0 ]]; then
  if ! command -v dpkg-query >/dev/null; then
    apt_problem="not a Debian system (no dpkg): install ${absent[*]} yourself"
  elif [[ "$install" == 0 ]]; then
    apt_problem="not installed (SARDINE_TEST_INSTALL=0): apt-get install ${absent[*]}"
  elif ! sudo="$(sudo_prefix)"; then
    apt_problem="cannot install ${absent[*]}: not root and no passwordless sudo; run: sudo apt-get install ${absent[*]}"
  else
    echo "installing ${absent[*]} with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    log="$(mktemp)"
    if ! { $sudo apt-get update -q && $sudo apt-get install -y -q --no-install-recommends "${absent[@]}"; } >"$log" 2>&1; then
      apt_problem="apt-get install ${absent[*]} failed: $(tail -n 1 "$log")"
    fi
    rm -f "$log"
  fi
fi
for group in PYTHON CHROMIUM SLURM; do
  for package in ${packages_of[$group]}; do
    if ! installed "$package"; then
      lacks "$group" "${purpose_of[$group]}: ${apt_problem:-package $package is not installed}"
      break
    fi
  done
done

# The one-node test cluster gives its node a private tmpfs (unshare --mount), which only root may do.
if [[ "$(id -u)" -ne 0 ]]; then
  lacks SLURM "the SLURM tests' one-node cluster mounts a private tmpfs for its node, which needs root: run npm test as root (CI does)"
fi

# --- Python venvs -------------------------------------------------------------------------------
if [[ "$install" == 0 ]]; then
  [[ -x "${MLFLOW_VENV:-$repo/.venv-mlflow}/bin/mlflow" ]] ||
    lacks MLFLOW "the MLflow venv ${MLFLOW_VENV:-$repo/.venv-mlflow} is missing (SARDINE_TEST_INSTALL=0): run .ci/mlflow-server.sh install"
  bash "$repo/tools/setup-reference-env.sh" --check >/dev/null 2>&1 ||
    lacks REFERENCE_PYTHON "the reference venv is missing or out of date (SARDINE_TEST_INSTALL=0): run tools/setup-reference-env.sh"
else
  # The two venvs share nothing, and each install mostly waits on downloads: side by side, the longer one
  # (the reference venv's torch) is all the wait. Each runs in a process group of its own, so that Ctrl-C
  # or SIGTERM stops its pip too (an interrupted install has no marker: the next run redoes it).
  mlflow_log="$(mktemp)" reference_log="$(mktemp)"
  setsid bash "$repo/.ci/mlflow-server.sh" install >"$mlflow_log" 2>&1 </dev/null &
  mlflow_install=$!
  setsid bash "$repo/tools/setup-reference-env.sh" >"$reference_log" 2>&1 </dev/null &
  reference_install=$!
  trap 'kill -TERM -- "-$mlflow_install" "-$reference_install" 2>/dev/null; wait; rm -f "$mlflow_log" "$reference_log"; exit 130' INT TERM
  wait "$mlflow_install" ||
    lacks MLFLOW "the MLflow venv could not be installed (.ci/mlflow-server.sh install): $(tail -n 1 "$mlflow_log")"
  wait "$reference_install" ||
    lacks REFERENCE_PYTHON "the reference venv could not be installed (tools/setup-reference-env.sh): $(tail -n 1 "$reference_log")"
  trap - INT TERM
  rm -f "$mlflow_log" "$reference_log"
fi

if [[ $require_all == yes && $missing -eq 1 ]]; then exit 1; fi
exit 0
