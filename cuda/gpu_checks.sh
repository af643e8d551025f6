#!/usr/bin/env bash
# The GPU checks of the CUDA backend in one run, for a machine with an NVIDIA GPU: the CUDA tests (every
# kernel against the CPU reference, greedy CPU == GPU on real models), `strata bench --device cuda` on a
# synthetic Llama-3-8B-shaped Q4_0 model (decode tok/s and % of the copy bandwidth measured in the same run,
# pp512), on SmolLM2 when present, and compute-sanitizer over the kernel tests. Results go to OUT_DIR.
#
#   cuda/gpu_checks.sh BIN_DIR OUT_DIR
#     BIN_DIR   holds strata and strata_tests built with -DSTRATA_CUDA=ON (e.g. build/ and build/tests/ copied)
#     env STRATA_SHARED_MODELS (stories260K.gguf), STRATA_MODEL_CACHE (SmolLM2-135M-Instruct.Q4_1.gguf),
#         STRATA_SYNTH_DIR (where the 8B file is written; default /tmp)
set -u
BIN=$(cd "$1" && pwd)
OUT=$2
mkdir -p "$OUT"
SUM="$OUT/summary.txt"
say() { echo "== $*" | tee -a "$SUM"; }
stage() {  # stage NAME LIMIT_S OUTFILE CMD...
    local name=$1 limit=$2 file=$3
    shift 3
    local t0=$SECONDS
    timeout "$limit" "$@" >>"$file" 2>&1
    local rc=$?
    say "$name: exit $rc in $((SECONDS - t0)) s"
    return $rc
}

say "$(date -u +%FT%TZ) on $(hostname)"
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,clocks.max.mem,driver_version --format=csv | tee -a "$SUM"

stage "CUDA tests" 240 "$OUT/cuda_tests.txt" "$BIN/strata_tests" --gtest_filter='Cuda*' --gtest_color=no
grep -E "^\[cuda\]|FAILED|PASSED|SKIPPED \]" "$OUT/cuda_tests.txt" | head -40 | tee -a "$SUM"

SYN=${STRATA_SYNTH_DIR:-/tmp}/llama3-8b-Q4_0.gguf
if [ ! -f "$SYN" ]; then
    stage "synth llama3-8b Q4_0" 150 "$OUT/bench.md" "$BIN/strata" synth --shape llama3-8b --type Q4_0 -o "$SYN"
fi
if [ -f "$SYN" ]; then
    echo "## llama3-8b Q4_0 (synthetic), --device cuda" >>"$OUT/bench.md"
    stage "bench 8B" 150 "$OUT/bench.md" "$BIN/strata" bench -m "$SYN" --device cuda -p 512 -n 128 -r 3 \
        --spec base --spec 0:24,8:32
    [ -n "${STRATA_GPU_QUICK:-}" ] && { cat "$OUT/bench.md" >>"$SUM"; say "quick: stopping after the 8B bench"; exit 0; }
    echo "## the same, decode without the CUDA graph (STRATA_CUDA_GRAPH=0)" >>"$OUT/bench.md"
    STRATA_CUDA_GRAPH=0 stage "bench 8B no graph" 60 "$OUT/bench.md" "$BIN/strata" bench -m "$SYN" --device cuda \
        -p 0 -n 128 -r 3
    echo "## the same, decode without programmatic dependent launch (STRATA_CUDA_PDL=0)" >>"$OUT/bench.md"
    STRATA_CUDA_PDL=0 stage "bench 8B no PDL" 60 "$OUT/bench.md" "$BIN/strata" bench -m "$SYN" --device cuda \
        -p 0 -n 128 -r 3
fi
SMOL=${STRATA_MODEL_CACHE:-/nonexistent}/SmolLM2-135M-Instruct.Q4_1.gguf
if [ -f "$SMOL" ]; then
    echo "## SmolLM2-135M-Instruct Q4_1, --device cuda" >>"$OUT/bench.md"
    stage "bench SmolLM2" 60 "$OUT/bench.md" "$BIN/strata" bench -m "$SMOL" --device cuda -p 512 -n 128 -r 3 \
        --spec base --spec 0:20,10:30
fi
cat "$OUT/bench.md" >>"$SUM"

if command -v compute-sanitizer >/dev/null; then
    stage "compute-sanitizer memcheck" 120 "$OUT/sanitizer.txt" compute-sanitizer --tool memcheck --error-exitcode 9 \
        "$BIN/strata_tests" --gtest_filter='CudaKernels.*:CudaModel.Stories*:CudaModel.Repeated*' --gtest_color=no
    tail -5 "$OUT/sanitizer.txt" >>"$SUM"
fi
if command -v ncu >/dev/null && [ -f "$SYN" ]; then
    stage "ncu decode kernels" 90 "$OUT/ncu.txt" ncu --clock-control none -k regex:matmul_q_kernel -c 6 \
        --section SpeedOfLight "$BIN/strata" bench -m "$SYN" --device cuda -p 0 -n 4 -r 1
fi
say "done"
