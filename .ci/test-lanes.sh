#!/usr/bin/env bash
# Runs the suite (`npx vitest run`, extra arguments passed on) in two vitest processes side by side when
# no arguments are given: the SLURM executor's file spends most of its ten minutes waiting on its
# clusters' scheduler (jobs queued behind their inputs, a controller purging ended jobs once a minute, a
# job held to its 1-minute time limit), and the srun training file much of its time on node and Python
# starting in each job and on its own time-limited job, so they run one after the other beside the other
# files instead of holding one of their two workers. In the last CI run this lane took 1088 s (618 + 470)
# and the main lane's two workers about 1970 s: the lane ends first, so the srun file stays here rather
# than taking a worker from the main lane. Their output is printed when both lanes are done; the status is
# the worse of the two.
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ $# -gt 0 ]]; then
  exec npx vitest run "$@"
fi

waiting=(test/slurm/slurm-executor.test.ts test/slurm/srun-training.test.ts)
log="$(mktemp "${TMPDIR:-/tmp}/sardine-slurm-lane-XXXXXX")"
npx vitest run --no-file-parallelism "${waiting[@]}" >"$log" 2>&1 &
lane=$!
# Ctrl-C or SIGTERM stop the side lane too (its clusters are stopped by its own afterAll hooks).
trap 'kill -TERM "$lane" 2>/dev/null; wait "$lane"; rm -f "$log"; exit 130' INT TERM

status=0
SARDINE_TEST_EXCLUDE="$(IFS=,; echo "${waiting[*]}")" npx vitest run || status=$?
lane_status=0
wait "$lane" || lane_status=$?
echo
echo "== ${waiting[*]} (run beside the other files)"
cat "$log"
rm -f "$log"
if [[ $lane_status -ne 0 ]]; then status=$lane_status; fi
exit "$status"
