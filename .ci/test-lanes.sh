#!/usr/bin/env bash
# Runs the suite (`npx vitest run`, extra arguments passed on) in two vitest processes side by side when
# no arguments are given: the SLURM executor's file spends most of its ten minutes waiting on its
# clusters' scheduler (jobs queued behind their inputs, a controller purging ended jobs once a minute, a
# job held to its 1-minute time limit), so it runs beside the other files instead of holding one of
# their two workers. Its output is printed when both are done; the status is the worse of the two.
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ $# -gt 0 ]]; then
  exec npx vitest run "$@"
fi

waiting="test/slurm/slurm-executor.test.ts"
log="$(mktemp "${TMPDIR:-/tmp}/sardine-slurm-lane-XXXXXX")"
npx vitest run "$waiting" >"$log" 2>&1 &
lane=$!
# Ctrl-C or SIGTERM stop the side lane too (its clusters are stopped by its own afterAll hooks).
trap 'kill -TERM "$lane" 2>/dev/null; wait "$lane"; rm -f "$log"; exit 130' INT TERM

status=0
SARDINE_TEST_EXCLUDE="$waiting" npx vitest run || status=$?
lane_status=0
wait "$lane" || lane_status=$?
echo
echo "== $waiting (run beside the other files)"
cat "$log"
rm -f "$log"
if [[ $lane_status -ne 0 ]]; then status=$lane_status; fi
exit "$status"
