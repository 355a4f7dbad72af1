#!/usr/bin/env bash
# The test command on a busy machine: runs `bash tests/run.sh` RUNS times
# in a row (default 3) while both cores are kept busy by a CPU hog
# (stress-ng if installed, else plain shell loops), and stops at the
# first failure. Not part of CI (it takes RUNS times as long): run it
# before trusting a change to anything that waits on real time.
#
#   bash tests/stress.sh            # 3 runs
#   RUNS=1 bash tests/stress.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-3}"
CPUS="$(nproc)"

hogs=()
stop_hogs() {
  for p in "${hogs[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_hogs EXIT

if command -v stress-ng >/dev/null; then
  stress-ng --cpu "$CPUS" --quiet &
  hogs+=($!)
  echo "stress.sh: stress-ng --cpu $CPUS (pid ${hogs[*]})"
else
  for _ in $(seq "$CPUS"); do
    sh -c 'while :; do :; done' &
    hogs+=($!)
  done
  echo "stress.sh: $CPUS busy loops (pids ${hogs[*]})"
fi

for i in $(seq "$RUNS"); do
  start=$(date +%s)
  log="$(mktemp -t corebgp-stress-XXXXXX.log)"
  if bash tests/run.sh >"$log" 2>&1; then
    echo "stress.sh: run $i/$RUNS passed in $(($(date +%s) - start)) s (log: $log)"
  else
    echo "stress.sh: run $i/$RUNS FAILED after $(($(date +%s) - start)) s; the end of its log:"
    tail -n 60 "$log"
    echo "(whole log: $log)"
    exit 1
  fi
done
echo "stress.sh: $RUNS of $RUNS runs passed under load"
