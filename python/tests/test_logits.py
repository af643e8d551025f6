"""eval() and logits: equal to a plain C++ forward pass bit for bit, and a view of the engine's buffer (no
copy)."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from conftest import THREADS, run

import strata_llm


def cpp_logits(dump_logits: str, path: str, spec: str, groups: list[list[int]], tmp_path) -> np.ndarray:
    """The last token's logits after each group of tokens, from python/tests/dump_logits.cpp."""
    out = tmp_path / "logits.f32"
    run(dump_logits, path, spec, THREADS, out, *(",".join(map(str, g)) for g in groups))
    return np.fromfile(out, dtype=np.float32).reshape(len(groups), -1)


@pytest.mark.parametrize(
    "which,spec", [("stories", ""), ("stories", "0:4,1:5"), ("smollm2", ""), ("smollm2", "0:20,10:30")]
)
def test_logits_equal_the_cpp_forward_pass_bit_for_bit(request, dump_logits, tmp_path, which, spec):
    path = request.getfixturevalue(which)
    m = strata_llm.Model(path, layer_spec=spec or None, n_threads=THREADS)
    prompt = m.tokenize(strata_llm.sample_text() * 2)  # more than one prompt batch (256 tokens)
    assert len(prompt) > 256
    groups = [prompt, m.tokenize(" And then", add_bos=False), [m.tokenize(" the", add_bos=False)[0]]]
    expected = cpp_logits(dump_logits, path, spec, groups, tmp_path)
    assert expected.shape == (3, m.n_vocab)
    for i, group in enumerate(groups):
        got = m.eval(group)
        assert got.shape == (m.n_vocab,) and got.dtype == np.float32
        assert np.array_equal(got.view(np.uint32), expected[i].view(np.uint32)), f"group {i}: logits differ"
    assert m.tokens == [t for g in groups for t in g]


def test_logits_are_a_read_only_view_of_the_engine_buffer(stories):
    m = strata_llm.Model(stories, n_threads=THREADS)
    assert m.logits is None  # nothing evaluated yet
    first = m.eval(m.tokenize("Once upon a time"))
    kept = first.copy()
    assert not first.flags.writeable and not first.flags.owndata
    assert np.shares_memory(first, m.logits)  # the same buffer, not a copy per access
    with pytest.raises(ValueError):
        first[0] = 1.0
    second = m.eval([m.tokenize(" there", add_bos=False)[0]])
    assert np.shares_memory(first, second)
    assert np.array_equal(first, second) and not np.array_equal(
        first, kept
    )  # overwritten in place, as documented
    m.generate("Once", max_tokens=2)
    assert m.logits is None  # generate() moved the cache on
    m.reset()
    assert m.n_tokens == 0 and m.logits is None


def test_a_logits_array_keeps_the_engine_alive(stories):
    m = strata_llm.Model(stories, n_threads=THREADS)
    logits = m.eval(m.tokenize("Once upon a time"))
    expected = logits.copy()
    m.close()
    del m
    gc.collect()
    junk = [
        strata_llm.Model(stories, n_ctx=64).eval([1, 2, 3]).copy() for _ in range(3)
    ]  # reuse freed memory
    assert len(junk) == 3
    assert np.array_equal(logits, expected)


def test_greedy_generation_follows_the_argmax_of_eval(stories):
    """generate(temperature=0) picks the argmax of the same logits eval() shows."""
    m = strata_llm.Model(stories, n_threads=THREADS)
    ids = m.tokenize("Once upon a time")
    greedy = m.generate(ids, max_tokens=12, temperature=0, ignore_eos=True)
    tokens = m.last_generation["tokens"]
    m.reset()
    logits = m.eval(ids)
    for t in tokens:
        assert int(np.argmax(logits)) == t
        logits = m.eval([t])
    assert m.detokenize(tokens) == greedy
