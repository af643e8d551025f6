#!/usr/bin/env bash
# A fuzzing campaign: several libFuzzer processes per harness for a fixed time, each restarted after a finding
# (the finding is kept), then the executions per harness summed from libFuzzer's final stats.
#   tests/fuzz/campaign.sh BUILD_DIR WORK_DIR SECONDS HARNESS=PROCESSES ...
#   e.g. tests/fuzz/campaign.sh build-fuzz /tmp/fuzzwork 3600 c_api=6 tokenizer_spm=4 gguf_model=2 llama2c=2
# Processes of one harness share WORK_DIR/HARNESS/new (libFuzzer picks up each other's inputs from it); logs go
# to WORK_DIR/HARNESS/logs/. Prints "HARNESS execs=N findings=M" per harness; exit 1 when there is a finding.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
build="$1" work="$2" seconds="$3"
shift 3
start=$(date +%s)
for spec in "$@"; do
  harness="${spec%%=*}" n="${spec#*=}"
  mkdir -p "$work/$harness/logs"
  for i in $(seq 1 "$n"); do
    (
      run=0
      while :; do
        left=$(( seconds - ($(date +%s) - start) ))
        [ "$left" -lt 5 ] && break
        run=$((run + 1))
        FUZZ_LOG="$work/$harness/logs/$i.$run" "$here/run.sh" "$build" "$harness" "$work" \
          -max_total_time="$left" >/dev/null 2>&1
      done
    ) &
  done
done
wait
status=0
for spec in "$@"; do
  harness="${spec%%=*}"
  execs=$(cat "$work/$harness"/logs/* 2>/dev/null | awk '/stat::number_of_executed_units/ {s += $2} END {print s + 0}')
  findings=$(find "$work/$harness" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
             -o -name 'oom-*' \) | wc -l)
  echo "$harness execs=$execs findings=$findings"
  [ "$findings" -eq 0 ] || status=1
done
exit $status
