#!/usr/bin/env bash
# Build a cached *reference* llama.cpp (tools + python bindings) from the
# llama-cpp-python sdist, which vendors llama.cpp under vendor/llama.cpp.
#
# This is test tooling only: nothing from llama.cpp is copied into strata.
# Idempotent: every step is skipped when its outputs already exist (and were
# built with the same settings, see the *.stamp files).
#
# Layout (CACHE = ${STRATA_CACHE:-$HOME/.cache/strata}):
#   $CACHE/pip/llama_cpp_python-0.3.36.tar.gz   input sdist (must already exist)
#   $CACHE/llamacpp/src/                        extracted sdist
#   $CACHE/llamacpp/src/vendor/llama.cpp/       llama.cpp source tree
#   $CACHE/llamacpp/build/bin/                  llama-simple, llama-completion, llama-bench,
#                                               llama-perplexity, llama-tokenize
#   $CACHE/llamacpp/VERSION.txt                 llama.cpp commit / build info
#
# Env knobs:
#   STRATA_CACHE            cache root (default $HOME/.cache/strata)
#   STRATA_LLAMACPP_DIR     output dir (default $STRATA_CACHE/llamacpp)
#   STRATA_LLAMACPP_SDIST   sdist path (default $STRATA_CACHE/pip/llama_cpp_python-0.3.36.tar.gz)
#   STRATA_LLAMACPP_CFLAGS  extra C/C++ flags (default: disable AMX on x86-64, see below)
#   STRATA_SMOLLM2          model for the smoke test (default $STRATA_CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf)
#   JOBS                    parallel jobs (default 2)
#   PYTHON                  python for the bindings (default python3)
#   SKIP_PYTHON=1           do not build/install the python bindings
#   SKIP_TOOLS=1            do not build the CLI tools
#
# Usage: tests/reference/build_llamacpp.sh
#   (about 10 minutes on 2 cores: tools ~3.5 min, python bindings ~6 min)
set -euo pipefail

SDIST_VERSION=0.3.36
CACHE="${STRATA_CACHE:-$HOME/.cache/strata}"
DEST="${STRATA_LLAMACPP_DIR:-$CACHE/llamacpp}"
SDIST="${STRATA_LLAMACPP_SDIST:-$CACHE/pip/llama_cpp_python-${SDIST_VERSION}.tar.gz}"
JOBS="${JOBS:-2}"
PYTHON="${PYTHON:-python3}"
SRC="$DEST/src"
LLAMA_SRC="$SRC/vendor/llama.cpp"
BUILD="$DEST/build"
BIN="$BUILD/bin"

log() { echo "[build_llamacpp $(date +%H:%M:%S)] $*"; }

if [[ ! -f "$SDIST" ]]; then
    echo "error: sdist not found: $SDIST" >&2
    exit 1
fi
mkdir -p "$DEST"

# ---------------------------------------------------------------- 1. extract
if [[ -f "$LLAMA_SRC/CMakeLists.txt" ]]; then
    log "source already extracted: $SRC"
else
    log "extracting $SDIST -> $SRC"
    tmp="$(mktemp -d "$DEST/extract.XXXXXX")"
    tar -xzf "$SDIST" -C "$tmp"
    rm -rf "$SRC"
    mv "$tmp/llama_cpp_python-${SDIST_VERSION}" "$SRC"
    rmdir "$tmp"
fi

# ---------------------------------------------------------------- version info
commit=""
if [[ -f "$SRC/.git/modules/vendor/llama.cpp/HEAD" ]]; then
    commit="$(head -c 40 "$SRC/.git/modules/vendor/llama.cpp/HEAD")"
fi

# ---------------------------------------------------------------- compiler flags
# -march=native enables AMX on Sapphire-Rapids-class CPUs; ggml's AMX matmul
# path (ggml_backend_amx_mul_mat) dies with a general-protection fault on
# `ldtilecfg` on this VM (although a standalone AMX ldtilecfg test works), so
# the reference build keeps AVX-512 etc. but disables AMX.  Override with
# STRATA_LLAMACPP_CFLAGS (set it to " " to add nothing).
if [[ -z "${STRATA_LLAMACPP_CFLAGS:-}" ]]; then
    STRATA_LLAMACPP_CFLAGS=""
    if [[ "$(uname -m)" == x86_64 ]] && echo 'int x;' | ${CC:-cc} -x c -c -o /dev/null -mno-amx-tile - 2>/dev/null; then
        STRATA_LLAMACPP_CFLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    fi
fi
EXTRA_FLAGS="$(echo "$STRATA_LLAMACPP_CFLAGS" | xargs)"   # trim

# ---------------------------------------------------------------- 2. tools
TOOLS=(llama-bench llama-perplexity llama-tokenize)
# llama-cli is only built together with the server (LLAMA_BUILD_SERVER) in this
# llama.cpp version; we keep the server off and build llama-simple +
# llama-completion (the classic text-completion CLI) instead.
OPTIONAL_TOOLS=(llama-simple llama-completion llama-cli)

if [[ "${SKIP_TOOLS:-0}" != 1 ]]; then
    CONFIGURE_ARGS=(
        -DCMAKE_BUILD_TYPE=Release
        "-DCMAKE_C_FLAGS=$EXTRA_FLAGS"
        "-DCMAKE_CXX_FLAGS=$EXTRA_FLAGS"
        -DBUILD_SHARED_LIBS=OFF
        -DGGML_NATIVE=ON
        -DLLAMA_CURL=OFF
        -DLLAMA_OPENSSL=OFF
        -DLLAMA_BUILD_TESTS=OFF
        -DLLAMA_BUILD_EXAMPLES=ON
        -DLLAMA_BUILD_TOOLS=ON
        -DLLAMA_BUILD_SERVER=OFF
        -DLLAMA_BUILD_APP=OFF
        -DLLAMA_BUILD_UI=OFF
        -DLLAMA_USE_PREBUILT_UI=OFF
        -DLLAMA_LLGUIDANCE=OFF
    )
    stamp="$(printf '%s\n' "$commit" "${CONFIGURE_ARGS[@]}")"
    if [[ -d "$BUILD" && ( ! -f "$BUILD/strata.stamp" || "$(cat "$BUILD/strata.stamp")" != "$stamp" ) ]]; then
        log "no stamp or configure arguments changed: wiping $BUILD"
        rm -rf "$BUILD"
    fi
    need_build=0
    for t in "${TOOLS[@]}" llama-simple llama-completion; do
        [[ -x "$BIN/$t" ]] || need_build=1
    done
    if [[ $need_build == 0 ]]; then
        log "tools already built in $BIN"
    else
        gen=()
        command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
        log "configuring $BUILD (extra flags: '$EXTRA_FLAGS')"
        cmake -S "$LLAMA_SRC" -B "$BUILD" "${gen[@]}" "${CONFIGURE_ARGS[@]}"
        printf '%s\n' "$stamp" > "$BUILD/strata.stamp"
        # only build what we need (examples/tools define many more targets)
        if [[ -f "$BUILD/build.ninja" ]]; then
            all_targets="$(ninja -C "$BUILD" -t targets all 2>/dev/null | cut -d: -f1)"
        else
            all_targets="$(make -C "$BUILD" help 2>/dev/null | sed -n 's/^\.\.\. //p')"
        fi
        targets=()
        for t in "${TOOLS[@]}" "${OPTIONAL_TOOLS[@]}"; do
            if grep -qx "$t" <<<"$all_targets"; then
                targets+=("$t")
            fi
        done
        log "building targets: ${targets[*]} (-j$JOBS)"
        start=$(date +%s)
        cmake --build "$BUILD" --config Release -j "$JOBS" --target "${targets[@]}"
        log "tools built in $(( $(date +%s) - start )) s"
    fi
    for t in "${TOOLS[@]}"; do
        [[ -x "$BIN/$t" ]] || { echo "error: $BIN/$t missing after build" >&2; exit 1; }
    done
fi

# ---------------------------------------------------------------- 3. python bindings
# Same llama.cpp sources as the tools; CPU only, native ISA (minus AMX); no mtmd/llava.
PY_CMAKE_ARGS="-DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF"
PY_STAMP_FILE="$DEST/python_bindings.stamp"
py_stamp="$(printf '%s\n' "$commit" "$PY_CMAKE_ARGS" "CFLAGS=$EXTRA_FLAGS" "$("$PYTHON" -c 'import sys; print(sys.executable)')")"
py_ok() {
    [[ -f "$PY_STAMP_FILE" && "$(cat "$PY_STAMP_FILE")" == "$py_stamp" ]] || return 1
    "$PYTHON" -c "import sys, llama_cpp; sys.exit(0 if llama_cpp.__version__ == '$SDIST_VERSION' else 1)" >/dev/null 2>&1
}
if [[ "${SKIP_PYTHON:-0}" != 1 ]]; then
    if py_ok; then
        log "llama_cpp $SDIST_VERSION already installed in $PYTHON with the same settings"
    else
        log "pip installing llama-cpp-python from $SDIST (builds llama.cpp, -j$JOBS)"
        start=$(date +%s)
        # Installing the local sdist file: pip does not fetch it again.
        # CFLAGS/CXXFLAGS seed CMAKE_C(XX)_FLAGS of pip's fresh build dir.
        CMAKE_ARGS="$PY_CMAKE_ARGS" \
        CFLAGS="$EXTRA_FLAGS" CXXFLAGS="$EXTRA_FLAGS" \
        CMAKE_BUILD_PARALLEL_LEVEL="$JOBS" \
        FORCE_CMAKE=1 \
            "$PYTHON" -m pip install -v --no-cache-dir --force-reinstall --no-deps "$SDIST"
        # runtime deps of the bindings (usually present already)
        "$PYTHON" -m pip install -q "typing-extensions>=4.5.0" "numpy>=1.20.0" "diskcache>=5.6.1" "jinja2>=2.11.3"
        log "python bindings built in $(( $(date +%s) - start )) s"
        printf '%s\n' "$py_stamp" > "$PY_STAMP_FILE"
        py_ok || { rm -f "$PY_STAMP_FILE"; echo "error: llama_cpp not importable after install" >&2; exit 1; }
    fi
fi

# ---------------------------------------------------------------- 4. smoke test
# A crash in the CPU kernels (see the AMX note above) only shows up when a
# model is actually evaluated; do that if the SmolLM2 model is around.
SMOKE_MODEL="${STRATA_SMOLLM2:-$CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
if [[ -f "$SMOKE_MODEL" ]]; then
    if [[ "${SKIP_TOOLS:-0}" != 1 && -x "$BIN/llama-simple" ]]; then
        log "smoke test: llama-simple on $(basename "$SMOKE_MODEL")"
        "$BIN/llama-simple" -m "$SMOKE_MODEL" -n 8 "The capital of France is" 2>/dev/null \
            || { echo "error: llama-simple smoke test failed" >&2; exit 1; }
        echo
    fi
    if [[ "${SKIP_PYTHON:-0}" != 1 ]]; then
        log "smoke test: python bindings"
        "$PYTHON" -c '
import sys, numpy as np, llama_cpp
llm = llama_cpp.Llama(sys.argv[1], n_ctx=128, n_threads=2, logits_all=True, verbose=False)
t = llm.tokenize(b"The capital of France is", add_bos=False)
llm.eval(t)
print("python smoke test: argmax ->", repr(llm.detokenize([int(np.argmax(llm.scores[len(t) - 1]))]).decode()))
' "$SMOKE_MODEL" || { echo "error: python smoke test failed" >&2; exit 1; }
    fi
fi

# ---------------------------------------------------------------- 5. record version
{
    echo "sdist: $(basename "$SDIST")"
    echo "sdist_sha256: $(sha256sum "$SDIST" | cut -d' ' -f1)"
    echo "llama_cpp_commit: ${commit:-unknown}"
    echo "extra_cflags: $EXTRA_FLAGS"
    if [[ -x "$BIN/llama-completion" ]]; then
        echo "llama-completion --version:"
        "$BIN/llama-completion" --version 2>&1 | sed 's/^/  /' || true
    fi
    if "$PYTHON" -c "import llama_cpp" >/dev/null 2>&1; then
        echo "python_bindings: $("$PYTHON" -c 'import llama_cpp; print(llama_cpp.__version__, llama_cpp.__file__)')"
        echo "python_system_info: $("$PYTHON" -c 'import llama_cpp; print(llama_cpp.llama_print_system_info().decode())')"
    fi
    echo "tools:"
    for t in "${TOOLS[@]}" "${OPTIONAL_TOOLS[@]}"; do
        if [[ -x "$BIN/$t" ]]; then echo "  $BIN/$t"; fi
    done
} > "$DEST/VERSION.txt"
log "done; see $DEST/VERSION.txt"
cat "$DEST/VERSION.txt"
