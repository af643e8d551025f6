"""Ctrl-C during a generation: KeyboardInterrupt once the engine has stopped, and everything stays usable.

Both ways Ctrl-C arrives are tested: a real SIGINT to a child process (as a terminal or Jupyter sends it), and
_thread.interrupt_main() (which raises it in the main thread without a signal). Timings here are limits on how
long stopping may take on a loaded machine, not speed claims."""

from __future__ import annotations

import _thread
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from conftest import THREADS

import strata_llm

# A generation that would run for minutes: the test fails (rather than passing late) if it is not stopped.
LONG = dict(max_tokens=100_000, ignore_eos=True)
STOP_WITHIN = 10.0  # seconds from the interrupt to KeyboardInterrupt, generous for a busy 2-core machine


def interrupt_after(seconds: float) -> threading.Timer:
    t = threading.Timer(seconds, _thread.interrupt_main)
    t.start()
    return t


def test_interrupt_main_stops_generate(smollm2):
    m = strata_llm.Model(smollm2, n_threads=THREADS, n_ctx=4096)
    expected = m.generate("The capital of France is", max_tokens=8, temperature=0)
    interrupt_after(1.0)
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        m.generate("Tell me a very long story.", **LONG)
    assert time.monotonic() - start < 1.0 + STOP_WITHIN
    g = m.last_generation
    assert g["finish_reason"] == "interrupted" and 0 < g["generated_tokens"] < 4000
    assert m.n_tokens == g["prompt_tokens"] + g["generated_tokens"]  # the cache holds what was evaluated
    assert m.generate("The capital of France is", max_tokens=8, temperature=0) == expected


def test_interrupt_main_stops_a_long_prompt(smollm2):
    m = strata_llm.Model(smollm2, n_threads=THREADS, n_batch=8)  # small batches: a prompt of many of them
    prompt = m.tokenize("word " * 3000)
    interrupt_after(0.5)
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        m.generate(prompt, max_tokens=4)
    assert time.monotonic() - start < 0.5 + STOP_WITHIN
    g = m.last_generation
    assert g["finish_reason"] == "interrupted" and g["generated_tokens"] == 0
    assert g["evaluated_prompt_tokens"] < len(prompt) and g["evaluated_prompt_tokens"] % 8 == 0
    assert m.n_tokens == g["evaluated_prompt_tokens"]


def test_interrupt_main_stops_eval_between_batches(smollm2):
    m = strata_llm.Model(smollm2, n_threads=THREADS, n_batch=8)
    tokens = m.tokenize("word " * 3000)
    interrupt_after(0.5)
    with pytest.raises(KeyboardInterrupt):
        m.eval(tokens)
    assert m.n_tokens < len(tokens) and m.n_tokens % 8 == 0
    assert m.tokens == tokens[: m.n_tokens]
    m.eval(tokens[m.n_tokens : m.n_tokens + 3])  # goes on from there


def test_interrupt_main_stops_a_chat_reply_and_keeps_it(smollm2):
    chat = strata_llm.Chat(strata_llm.Model(smollm2, n_threads=THREADS), max_tokens=None, temperature=0)
    pieces: list[str] = []
    interrupt_after(1.5)
    with pytest.raises(KeyboardInterrupt):
        for piece in chat.send("Write a long essay about the history of bread.", stream=True):
            pieces.append(piece)
    last = chat.history[-1]
    assert last["role"] == "assistant" and last.get("interrupted") is True
    assert last["content"].startswith("".join(pieces)) and pieces
    assert chat.last_turn["interrupted"]
    chat.max_tokens = 4
    more = chat.continue_(" In short,")
    assert chat.history[-1]["content"] == last["content"] + more
    assert "interrupted" not in chat.history[-1]


CHILD = textwrap.dedent(
    """
    import sys, time, strata_llm
    m = strata_llm.Model(sys.argv[1], n_threads=2)
    kind = sys.argv[2]
    try:
        if kind == "generate":
            for i, piece in enumerate(m.generate("Tell me a very long story.", max_tokens=100000,
            ignore_eos=True,
                                                 stream=True)):
                if i == 2:
                    print("generating", flush=True)
        else:
            chat = strata_llm.Chat(m, max_tokens=None)
            for i, piece in enumerate(chat.send("Write a long essay about bread.", stream=True)):
                if i == 2:
                    print("generating", flush=True)
        print("not interrupted", flush=True)
    except KeyboardInterrupt:
        t = time.monotonic()
        if kind == "generate":
            print("interrupted", m.last_generation["finish_reason"], flush=True)
        else:
            print("interrupted", chat.history[-1].get("interrupted"), flush=True)
        print("still works:", bool(m.generate("Once", max_tokens=4)), flush=True)
    """
)


@pytest.mark.parametrize("kind", ["generate", "chat"])
def test_a_real_sigint_stops_the_generation(smollm2, kind):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, smollm2, kind],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd="/",
    )
    try:
        assert child.stdout.readline().strip() == "generating"
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        first = child.stdout.readline().strip()
        took = time.monotonic() - sent
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 0, err
    assert first == ("interrupted interrupted" if kind == "generate" else "interrupted True"), (
        first + out + err
    )
    assert took < STOP_WITHIN
    assert out.splitlines() == ["still works: True"]
    assert "Traceback" not in err and "terminate" not in err


def test_a_stream_left_open_at_exit_is_stopped(smollm2):
    """A generator never closed (kept in a global) while the interpreter exits: the worker is stopped and
    joined at exit, so no engine thread calls back into a finalised interpreter."""
    script = textwrap.dedent(
        """
        import sys, strata_llm
        m = strata_llm.Model(sys.argv[1], n_threads=2)
        pieces = m.generate("Tell me a very long story.", max_tokens=100000, ignore_eos=True, stream=True)
        next(pieces)
        print("leaving", flush=True)
        """
    )
    start = time.monotonic()
    p = subprocess.run(
        [sys.executable, "-c", script, smollm2], capture_output=True, text=True, timeout=120, cwd="/"
    )
    assert p.returncode == 0 and p.stdout == "leaving\n", p.stderr
    assert "terminate" not in p.stderr and "leaked" not in p.stderr
    assert time.monotonic() - start < 60  # stopped, not run to its 100000 tokens
