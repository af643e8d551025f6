"""The examples in python/examples run, briefly, on the real models (matplotlib is not needed: the spec
sweep's plot is made only where matplotlib is installed)."""

from __future__ import annotations

import importlib.util

from conftest import EXAMPLES, python_script


def test_two_models_talking(smollm2):
    out = python_script(
        EXAMPLES / "two_models_talking.py",
        smollm2,
        "--b-spec",
        "0:20,10:30",
        "--turns",
        "3",
        "--max-tokens",
        "8",
    ).stdout.decode()
    assert "[1 file(s) mapped" in out  # the model and its self-merged self share one mapping
    assert out.count("Bob > ") == 2 and out.count("Alice > ") == 2  # the opening line and one reply


def test_three_cobblers(smollm2):
    out = python_script(
        EXAMPLES / "three_cobblers.py",
        smollm2,
        "-q",
        "Write a Python function that adds two numbers.",
        "-q",
        "What is 2 + 2?",
        "--max-tokens",
        "8",
    ).stdout.decode()
    assert out.count("Q: ") == 2
    assert sum(out.count(f"[{d}: ") for d in ("Programming", "Maths", "Others")) == 2


def test_think_then_summarise(smollm2):
    out = python_script(
        EXAMPLES / "think_then_summarise.py",
        smollm2,
        "--thinker-spec",
        "0:20,10:30",
        "-q",
        "What is 3 + 4?",
        "--max-tokens",
        "8",
    ).stdout.decode()
    assert "--- think #1\nLet's break it down and think step by step.\n" in out
    assert "--- think #3\n\nLet me check if my answer is correct or not.\n" in out and "--- answer" in out


def test_spec_sweep(stories, tmp_path):
    out = python_script(EXAMPLES / "spec_sweep.py", stories, "--n-ctx", "64", "--no-plot").stdout.decode()
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["spec", "steps", "virtual"] and lines[1].split()[:2] == ["base", "5"]
    assert any(line.startswith("0:2,1:") for line in lines)  # a self-merge, 6 steps
    if importlib.util.find_spec("matplotlib"):
        plot = tmp_path / "sweep.png"
        python_script(EXAMPLES / "spec_sweep.py", stories, "--n-ctx", "64", "-o", str(plot))
        assert plot.stat().st_size > 1000
