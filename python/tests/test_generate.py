"""Text through Python equals the CLI's: `strata run` with the same prompt, settings and seed."""

from __future__ import annotations

import json

import pytest
from conftest import THREADS, run

import strata_llm

# (model fixture, layer spec, prompt, tokens): the base plan and a self-merge of each model.
CASES = [
    ("stories", "", "Once upon a time", 64),
    ("stories", "0:4,1:5", "Once upon a time", 64),  # 8 steps over 5 layers: 1-3 run twice
    ("smollm2", "", "The three primary colours are", 40),
    ("smollm2", "0:20,10:30", "The three primary colours are", 40),  # 40 steps over 30 layers
]


def cli_text(cli: str, model: str, spec: str, prompt: str, *args: str) -> str:
    spec_args = ["--layer-spec", spec] if spec else []
    out = run(
        cli, "run", "-m", model, *spec_args, "-p", prompt, "-t", THREADS, "--no-display-prompt", *args
    ).stdout
    text = out.decode("utf-8", errors="replace")
    assert text.endswith("\n")  # strata run ends the continuation with a newline
    return text[:-1]


@pytest.mark.parametrize("which,spec,prompt,n", CASES)
def test_greedy_text_equals_the_cli(request, cli, which, spec, prompt, n):
    path = request.getfixturevalue(which)
    expected = cli_text(cli, path, spec, prompt, "-n", str(n), "--temp", "0")
    m = strata_llm.Model(path, layer_spec=spec or None, n_threads=THREADS)
    got = m.generate(prompt, max_tokens=n, temperature=0)
    assert got == expected
    assert len(got) > 20
    assert m.last_generation["generated_tokens"] <= n


@pytest.mark.parametrize("which,spec,prompt,n", [CASES[1], CASES[3]])
def test_sampled_text_equals_the_cli_with_the_same_seed(request, cli, which, spec, prompt, n):
    path = request.getfixturevalue(which)
    settings = ["--temp", "0.9", "--top-k", "30", "--top-p", "0.9", "--min-p", "0.02", "-s", "1234"]
    expected = cli_text(cli, path, spec, prompt, "-n", str(n), *settings)
    m = strata_llm.Model(path, layer_spec=spec or None, n_threads=THREADS)
    got = m.generate(prompt, n, temperature=0.9, top_k=30, top_p=0.9, seed=1234, min_p=0.02)
    assert got == expected
    # Another seed gives another text (the seed reaches the sampler).
    assert m.generate(prompt, n, temperature=0.9, top_k=30, top_p=0.9, seed=99, min_p=0.02) != expected


def test_a_random_seed_is_reported_and_repeats_the_text(stories):
    m = strata_llm.Model(stories, n_threads=THREADS)
    first = m.generate("Once upon a time", max_tokens=32)  # seed -1: a random one, as strata run's default
    seed = m.last_generation["seed"]
    assert 0 <= seed < 2**63
    again = m.generate("Once upon a time", max_tokens=32, seed=seed)
    assert again == first and m.last_generation["seed"] == seed
    texts = {m.generate("Once upon a time", max_tokens=32) for _ in range(4)}
    assert len(texts) > 1  # fresh seeds, other texts


def test_repetition_penalty_equals_the_cli_also_over_a_reused_cache(cli, stories):
    prompt = "Once upon a time, there was a little girl named Lily. She loved to play with her"
    expected = cli_text(cli, stories, "", prompt, "-n", "48", "--temp", "0", "--repeat-penalty", "1.5")
    m = strata_llm.Model(stories, n_threads=THREADS)
    assert m.generate(prompt, max_tokens=48, temperature=0, repeat_penalty=1.5) == expected
    # Again: all but the last prompt token come from the cache, and the penalty must still count them.
    assert m.generate(prompt, max_tokens=48, temperature=0, repeat_penalty=1.5) == expected
    assert m.last_generation["reused_tokens"] == len(m.tokenize(prompt, special=True)) - 1


def test_streaming_pieces_join_to_the_same_text(smollm2):
    m = strata_llm.Model(smollm2, n_threads=THREADS)
    text = m.generate("Write a haiku about the sea.", max_tokens=32, temperature=0)
    pieces = list(m.generate("Write a haiku about the sea.", max_tokens=32, temperature=0, stream=True))
    assert len(pieces) > 5 and all(isinstance(p, str) and p for p in pieces)
    assert "".join(pieces) == text


def test_a_second_call_reuses_the_cache_and_gives_the_same_text(smollm2):
    m = strata_llm.Model(smollm2, n_threads=THREADS)
    first = m.generate("List the planets of the solar system:", max_tokens=24, temperature=0)
    assert m.last_generation["reused_tokens"] == 0
    second = m.generate("List the planets of the solar system:", max_tokens=24, temperature=0)
    assert m.last_generation["reused_tokens"] > 0
    assert m.last_generation["evaluated_prompt_tokens"] == 1  # only the last prompt token, for its logits
    assert second == first


def test_stop_strings_end_the_text_before_them(stories):
    m = strata_llm.Model(stories, n_threads=THREADS)
    full = m.generate("Once upon a time", max_tokens=64, temperature=0)
    word = full.split()[6]
    cut = full[: full.index(word)]
    assert m.generate("Once upon a time", max_tokens=64, temperature=0, stop=[word, "zzzz"]) == cut
    assert m.last_generation["finish_reason"] == "stop"
    assert (
        "".join(m.generate("Once upon a time", max_tokens=64, temperature=0, stop=word, stream=True)) == cut
    )
    assert m.generate("Once upon a time", max_tokens=64, temperature=0, stop="no such text") == full


def test_token_ids_as_the_prompt(stories):
    m = strata_llm.Model(stories, n_threads=THREADS)
    text = m.generate("Once upon a time", max_tokens=16, temperature=0)
    ids = m.tokenize("Once upon a time", add_bos=True, special=True)
    assert m.generate(ids, max_tokens=16, temperature=0) == text
    assert m.last_generation["prompt_tokens"] == len(ids)
    assert len(m.last_generation["tokens"]) == m.last_generation["generated_tokens"]


def test_finish_reasons(stories):
    m = strata_llm.Model(stories, n_threads=THREADS, n_ctx=48)
    m.generate("Once upon a time", max_tokens=4)
    assert m.last_generation["finish_reason"] == "length"
    m.generate("Once upon a time", max_tokens=None, ignore_eos=True)
    assert m.last_generation["finish_reason"] == "context"
    assert len(m.tokens) == 48  # the context is full, and nothing overflowed
    m.generate("Once upon a time", max_tokens=None, temperature=0)
    assert m.last_generation["finish_reason"] in ("eos", "context")


@pytest.mark.parametrize("which", ["stories", "smollm2"])
def test_tokenize_equals_strata_tokenize(request, cli, which):
    path = request.getfixturevalue(which)
    m = strata_llm.Model(path)
    for text in ["Hello, world! 😀<|im_end|> café", "  leading spaces\tand a tab", "Once upon a time"]:
        for special, flags in ((True, []), (False, ["--no-parse-special"])):
            out = run(cli, "tokenize", "-m", path, "-p", text, "--ids", "--no-escape", *flags).stdout.decode()
            assert m.tokenize(text, special=special) == json.loads(out), (text, special)
    no_bos = run(cli, "tokenize", "-m", path, "-p", "Once upon", "--ids", "--no-bos").stdout.decode()
    assert m.tokenize("Once upon", add_bos=False) == json.loads(no_bos)


def test_tokenize_and_detokenize(smollm2):
    m = strata_llm.Model(smollm2)
    ids = m.tokenize("Hello, world! 😀")
    assert m.detokenize(ids) == "Hello, world! 😀"
    assert m.tokenize("<|im_end|>", special=True) == [m.tokenize("<|im_end|>", special=True)[0]]
    assert len(m.tokenize("<|im_end|>", special=False)) > 1
    assert b"".join(m.token_to_piece(t) for t in ids).decode() == "Hello, world! 😀"
    assert m.is_eog(m.token_eos)
