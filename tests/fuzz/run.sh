#!/usr/bin/env bash
# Runs one fuzz harness over its committed corpus (never writing into it), plus STRATA_FUZZ_SEEDS/HARNESS when that
# folder exists (fuzz_make_seeds writes it; the GGUF seeds are model files and are not committed).
#   tests/fuzz/run.sh BUILD_DIR HARNESS WORK_DIR [libFuzzer options ...]
# New inputs go to WORK_DIR/HARNESS/new, crashes to WORK_DIR/HARNESS/ (crash-*, leak-*, timeout-*, oom-*), the
# log to WORK_DIR/HARNESS/log. Exit status: libFuzzer's (0 = no finding). Per-harness input size limits live here.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="$1" harness="$2" work="$3"
shift 3
case "$harness" in
  gguf_model|llama2c) max_len=65536 ;;
  chat_template) max_len=8192 ;;
  mergekit) max_len=2048 ;;
  tokenizer_spm|tokenizer_bpe) max_len=1024 ;;
  c_api) max_len=512 ;;
  server_request) max_len=4096 ;;
  layer_spec) max_len=256 ;;
  kl_base) max_len=16384 ;;
  *) echo "unknown harness '$harness'" >&2; exit 2 ;;
esac
mkdir -p "$work/$harness/new"
bin="$build/tests/fuzz/fuzz_$harness"
[ -x "$bin" ] || { echo "no $bin: build with -DSTRATA_FUZZ=ON first" >&2; exit 2; }
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
log="${FUZZ_LOG:-$work/$harness/log}"  # campaign.sh gives each process its own
corpora=()  # the committed corpus and the generated seeds, whichever exist (gguf_model has only the seeds)
for d in "$here/corpus/$harness" "${STRATA_FUZZ_SEEDS:-/nonexistent}/$harness"; do [ -d "$d" ] && corpora+=("$d"); done
rc=0
nice -n 19 "$bin" -max_len=$max_len -timeout=20 -rss_limit_mb=2560 -print_final_stats=1 \
  -artifact_prefix="$work/$harness/" "$@" "$work/$harness/new" "${corpora[@]}" 2> "$log" || rc=$?
grep -E '^(INFO: Done|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY|artifact_prefix|.*runtime error)' "$log" >&2 || true
exit $rc
