"""Shared fixtures: the installed package, the real models, and the strata command and C++ helper that the
tests compare against (ctest passes their paths; a plain `pytest python/tests` finds them in ./build)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

strata_llm = pytest.importorskip(
    "strata_llm", reason="strata_llm is not installed (pip install . / .ci/setup)"
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
CACHE = pathlib.Path(os.environ.get("STRATA_CACHE") or pathlib.Path.home() / ".cache" / "strata")
MODEL_CACHE = pathlib.Path(os.environ.get("STRATA_MODEL_CACHE") or CACHE / "models")
SHARED_MODELS = pathlib.Path(os.environ.get("STRATA_SHARED_MODELS") or ROOT.parent / "shared" / "models")
CLI = pathlib.Path(os.environ.get("STRATA_CLI") or ROOT / "build" / "strata")
DUMP_LOGITS = pathlib.Path(
    os.environ.get("STRATA_DUMP_LOGITS") or ROOT / "build" / "python" / "tests" / "strata_dump_logits"
)
EXAMPLES = ROOT / "python" / "examples"
THREADS = 2


def _require(path: pathlib.Path, what: str) -> str:
    if not path.exists():
        pytest.skip(f"missing {what} {path} (run .ci/setup)")
    return str(path)


@pytest.fixture(scope="session")
def stories() -> str:
    """stories260K: a tiny llama (5 layers, no chat template)."""
    return _require(SHARED_MODELS / "stories260K.gguf", "model file")


@pytest.fixture(scope="session")
def smollm2() -> str:
    """SmolLM2-135M-Instruct Q4_1: a real chat model (30 layers, ChatML)."""
    return _require(MODEL_CACHE / "SmolLM2-135M-Instruct.Q4_1.gguf", "model file")


@pytest.fixture(scope="session")
def cli() -> str:
    return _require(CLI, "strata binary")


@pytest.fixture(scope="session")
def dump_logits() -> str:
    return _require(DUMP_LOGITS, "C++ helper")


def run(*args: str, input: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess[bytes]:
    """Runs a command, failing the test (with its stderr) when it exits non-zero."""
    p = subprocess.run(
        [str(a) for a in args],
        input=None if input is None else input.encode(),
        capture_output=True,
        timeout=timeout,
    )
    if p.returncode != 0:
        pytest.fail(f"{args[0]} exited {p.returncode}: {p.stderr.decode(errors='replace')[-2000:]}")
    return p


def python_script(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[bytes]:
    """Runs this python on a script (an example), from / so the installed package is the one imported."""
    p = subprocess.run([sys.executable, *args], capture_output=True, timeout=timeout, cwd="/")
    if p.returncode != 0:
        pytest.fail(f"{args[0]} exited {p.returncode}: {p.stderr.decode(errors='replace')[-3000:]}")
    return p
