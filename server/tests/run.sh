#!/usr/bin/env bash
# ctest's entry to the Python tests of strata serve: pytest over TESTS (a file or folder) in the shared virtual
# environment that .ci/setup makes ($STRATA_CACHE/venv, with the official openai client), against the strata
# binary and a model. Exit 77 (ctest: skipped) with the reason when the environment or the model is missing.
#   server/tests/run.sh PYTHON STRATA MODEL TESTS [pytest options]
set -euo pipefail
py="$1" strata="$2" model="$3" tests="$4"
shift 4
if [ ! -x "$py" ]; then echo "skipped: no Python environment at $py (run .ci/setup)"; exit 77; fi
if ! "$py" -c 'import openai, httpx, pytest' 2>/dev/null; then
  echo "skipped: $py lacks openai, httpx or pytest (run .ci/setup)"; exit 77
fi
if [ ! -f "$model" ]; then echo "skipped: missing model $model"; exit 77; fi
export STRATA_BIN="$strata" STRATA_TEST_MODEL="$model"
exec "$py" -m pytest -q -p no:cacheprovider "$tests" "$@"
