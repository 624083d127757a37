#!/usr/bin/env bash
# The Python environment with the reference libraries pinned in tools/requirements.txt (torch, diffusers,
# transformers, peft, accelerate, …): the golden scripts (tools/), the peer benchmarks (bench/), the tests
# that load sardine's files with them, and the torch engine use it.
#
#   tools/setup-reference-env.sh            creates .venv (or SARDINE_REFERENCE_VENV) when it is missing or
#                                           out of date; a marker holding the requirements' hash says a
#                                           finished install, so a second run does nothing
#   tools/setup-reference-env.sh --check    exit 0 when it is ready, 1 otherwise; installs nothing
#
# With SARDINE_PYTHON set, that interpreter is checked (its packages must match the pins) and never changed;
# nor is a .venv that is a symbolic link to a venv kept elsewhere.
# PyPI's torch wheel brings several GB of CUDA libraries (it also runs on CPU): the first install takes minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
requirements=tools/requirements.txt
venv="${SARDINE_REFERENCE_VENV:-.venv}"
python="${SARDINE_PYTHON:-$venv/bin/python}"
marker="$venv/.sardine-requirements"
# The requirements and the file they include (the torch engine's pins): a change to either means a new install.
want="$(cat "$requirements" adapters/torch/requirements.txt | sha256sum | cut -d' ' -f1)"

# Every pin installed at its version: the test for an environment made by hand or shared (no marker).
pins_match() {
  "$python" - "$requirements" <<'PY'
import importlib.metadata as metadata, os, re, sys
wrong = []
def pins(path):
    for line in open(path):
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            yield from pins(os.path.join(os.path.dirname(path), line[3:].strip()))
        elif line:
            yield line
for line in pins(sys.argv[1]):
    name, _, version = line.partition("==")
    name = re.sub(r"\[.*\]", "", name).strip()
    try:
        found = metadata.version(name)
    except metadata.PackageNotFoundError:
        wrong.append(f"{name} is not installed")
        continue
    if version and found.split("+")[0] != version:
        wrong.append(f"{name} {found} (pinned {version})")
if wrong:
    print("; ".join(wrong), file=sys.stderr)
    sys.exit(1)
PY
}

ready() {
  [[ -x "$python" ]] || return 1
  if [[ -z "${SARDINE_PYTHON:-}" && -f "$marker" && "$(cat "$marker")" == "$want" ]]; then return 0; fi
  pins_match
}

if [[ "${1:-}" == "--check" ]]; then
  ready
  exit
fi
if ready; then
  echo "reference environment ready: $python"
  exit 0
fi
if [[ -n "${SARDINE_PYTHON:-}" ]]; then
  echo "SARDINE_PYTHON=$SARDINE_PYTHON lacks the pinned reference libraries (see above); sardine does not change it" >&2
  exit 1
fi
if [[ -L "$venv" ]]; then
  # A link to a venv kept elsewhere (shared by several checkouts) is not this checkout's to change.
  echo "$venv links to $(readlink -f "$venv"), which lacks the pinned reference libraries (see above); update it there" >&2
  exit 1
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
rm -f "$marker"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
echo "$want" > "$marker"
echo "reference environment ready: $venv/bin/python"
