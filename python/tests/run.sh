#!/usr/bin/env bash
# ctest `python`: the strata_llm pytest suite with the given python (the venv .ci/setup fills). Exits 77 (ctest's
# skip) with the reason when that python, pytest or the installed package is missing.
set -u
PY="${1:?usage: run.sh PYTHON}"
HERE="$(cd "$(dirname "$0")" && pwd)"
if [ ! -x "$PY" ]; then
  echo "skip: no python at $PY (run .ci/setup: it creates the venv and installs strata_llm)"; exit 77
fi
if ! "$PY" -c "import pytest" 2>/dev/null; then
  echo "skip: pytest is not installed in $PY (run .ci/setup)"; exit 77
fi
if ! (cd / && "$PY" -c "import strata_llm" 2>/dev/null); then
  echo "skip: strata_llm is not installed in $PY (run .ci/setup, or: $PY -m pip install .)"; exit 77
fi
# From / so that the installed package is imported, never the source folder; no cache files in the checkout.
cd / && exec env PYTHONDONTWRITEBYTECODE=1 "$PY" -m pytest -p no:cacheprovider -q -rs "$HERE"
