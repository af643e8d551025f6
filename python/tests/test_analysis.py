"""The layer tools from Python equal the CLI's: plans (`strata show`), profiles (`strata profile -o`), layer
statistics and suggestions (`strata layers --json`); tables as dicts or DataFrames; one mapping per file."""

from __future__ import annotations

import json
import os
import re
import sys

import pytest
from conftest import THREADS, run

import strata_llm


@pytest.fixture(scope="module")
def text_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("text") / "text.txt"
    path.write_text(strata_llm.sample_text() * 3)
    return str(path)


def test_plan_equals_strata_show(cli, smollm2):
    m = strata_llm.Model(smollm2, layer_spec="0:20,10:30", n_ctx=4096)
    p = m.plan
    shown = run(cli, "show", "-m", smollm2, "--layer-spec", "0:20,10:30").stdout.decode()
    assert re.search(r"steps:\s+40 \(file layers: 30\)", shown) and p.n_steps == 40 and p.n_layers == 30
    assert int(re.search(r"virtual params: \S+ \((\d+)\)", shown).group(1)) == p.virtual_params
    assert re.search(r"repeated:\s+10-19", shown) and p.repeated == list(range(10, 20)) and p.dropped == []
    assert p.layers == list(range(20)) + list(range(10, 30)) and p.spec == "0:20,10:30"
    assert re.search(r"KV cache:\s+60.0 KiB per token \(f32\), 240.0 MiB at context 4096", shown)
    assert p.kv_bytes_per_token == 60 * 1024 and p.kv_bytes == 240 * 2**20
    assert p.kinds == ["global"] * 40
    base = strata_llm.Model(smollm2).plan
    # Repeats cost parameters the plan runs, not memory: the unique weights are the base model's.
    assert p.unique_params == base.unique_params == base.virtual_params == m.info["n_params"]
    assert p.virtual_params > base.virtual_params
    assert "virtual params: 169,915,968" in str(p)


def test_profile_equals_strata_profile(cli, stories, text_file, tmp_path):
    specs = ["0:4", "0:4,1:5"]
    out = tmp_path / "prof"
    spec_args = [a for s in specs for a in ("--spec", s)]
    run(cli, "profile", "-m", stories, "-f", text_file, "-c", "64", "-t", THREADS, *spec_args, "-o", out)
    expected = json.loads((out / "profile.json").read_text())["rows"]
    seen = []
    rows = strata_llm.profile(
        stories,
        specs,
        open(text_file).read(),
        n_ctx=64,
        n_threads=THREADS,
        progress=lambda done, total, what: seen.append((done, total)),
        as_dataframe=False,
    )
    assert [r["spec"] for r in rows] == ["base", *specs]
    assert seen and seen[-1][0] <= seen[-1][1]
    for got, want in zip(rows, expected):
        for key in (
            "spec",
            "steps",
            "virtual_params",
            "unique_weight_bytes",
            "kv_bytes",
            "tokens_scored",
            "chunks",
        ):
            assert got[key] == want[key], key
        for key in ("ppl", "ppl_err", "delta_ppl", "kl", "kl_err", "top1_agreement"):
            assert got[key] == pytest.approx(want[key], rel=1e-12, abs=1e-12), key
        assert got["prompt_tok_s"] > 0 and got["gen_tok_s"] > 0 and got["peak_rss_bytes"] > 0
    assert rows[0]["kl"] == 0 and rows[0]["top1_agreement"] == 1 and rows[1]["delta_ppl"] > 0


def test_layer_importance_equals_strata_layers(cli, stories, text_file):
    expected = json.loads(
        run(cli, "layers", "-m", stories, "-f", text_file, "-c", "64", "-t", THREADS, "--json").stdout
    )
    rows = strata_llm.layer_importance(
        stories, open(text_file).read(), n_ctx=64, n_threads=THREADS, as_dataframe=False
    )
    assert [r["layer"] for r in rows] == list(range(5))
    assert [r["block_influence"] for r in rows] == pytest.approx(expected["block_influence"], rel=1e-12)
    for n, values in enumerate(expected["angular"], start=1):
        got = [r[f"angular_{n}"] for r in rows]
        assert got[: len(values)] == pytest.approx(values, rel=1e-12)
        assert got[len(values) :] == [None] * (5 - len(values))
    ranks = sorted(range(5), key=lambda layer: expected["block_influence"][layer])
    assert [rows[layer]["bi_rank"] for layer in ranks] == [1, 2, 3, 4, 5]
    suggestions = strata_llm.layer_suggestions(rows, as_dataframe=False)
    assert [(s["kind"], s["n"], s["spec"]) for s in suggestions] == [
        (s["kind"], s["n"], s["spec"]) for s in expected["suggestions"]
    ]
    assert [s["score"] for s in suggestions] == pytest.approx([s["score"] for s in expected["suggestions"]])


def test_tables_are_dataframes_when_pandas_is_installed(stories, monkeypatch):
    text = strata_llm.sample_text()
    rows = strata_llm.layer_importance(stories, text, n_ctx=32, as_dataframe=False)
    assert isinstance(rows, list) and isinstance(rows[0], dict)
    try:
        import pandas
    except ImportError:
        pandas = None
    if pandas is not None:
        df = strata_llm.layer_importance(stories, text, n_ctx=32)
        assert isinstance(df, pandas.DataFrame) and list(df["layer"]) == list(range(5))
        assert strata_llm.layer_suggestions(df, as_dataframe=False) == strata_llm.layer_suggestions(
            rows, as_dataframe=False
        )
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if pandas were not installed
    assert isinstance(strata_llm.layer_importance(stories, text, n_ctx=32), list)
    with pytest.raises(ImportError, match="pip install pandas"):
        strata_llm.layer_importance(stories, text, n_ctx=32, as_dataframe=True)


def test_two_models_over_one_file_share_one_mapping(smollm2):
    path = os.path.realpath(smollm2)

    def entry():
        return [f for f in strata_llm.mapped_files() if f["path"] == path]

    a = strata_llm.Model(smollm2, n_ctx=256, n_threads=THREADS)
    a.generate("Hello", max_tokens=4)  # touch the weights
    rss_before = strata_llm.system_info()["rss_bytes"]
    b = strata_llm.Model(smollm2, layer_spec="0:20,10:30", n_ctx=256, n_threads=THREADS)
    c = strata_llm.Model(os.path.relpath(smollm2), layer_spec="0:10")  # another spelling of the same file
    b.generate("Hello", max_tokens=4)
    chat = strata_llm.Chat(c, max_tokens=4)
    chat.send("Hi")
    grown = strata_llm.system_info()["rss_bytes"] - rss_before
    files = entry()
    assert len(files) == 1 and files[0]["opens"] >= 3
    assert files[0]["mapped_bytes"] == a.info["file_bytes"]
    # The weights are not loaded again: memory grows by the KV caches and buffers only, far less than the
    # file.
    assert grown < a.info["file_bytes"] / 4, f"RSS grew by {grown} bytes"
    del a, b, c, chat
    assert entry() == []  # released with its last user


def test_lens_equals_strata_lens(cli, stories):
    args = ("--positions", "all", "--top-k", "3", "--compare", "base")
    shown = run(cli, "lens", "-m", stories, "--layer-spec", "0:5,1:3", "-p", "Once upon a time", "-t", THREADS,
                *args, "-o", "json").stdout.decode()
    m = strata_llm.Model(stories, layer_spec="0:5,1:3", n_threads=int(THREADS))
    report = strata_llm.lens_report(m, "Once upon a time", top_k=3, positions="all", compare="base")
    assert report == json.loads(shown)
    rows = strata_llm.lens(m, "Once upon a time", top_k=3, positions="all", compare="base", as_dataframe=False)
    n_pos = len(report["steps"][0]["positions"])
    assert len(rows) == m.plan.n_steps * n_pos and n_pos == len(report["tokens"])
    # File layer 1 runs at steps 1 and 5: two different rows, told apart by their step.
    first = [r for r in rows if r["layer"] == 1 and r["position"] == n_pos - 1]
    assert [r["step"] for r in first] == [1, 5] and first[0]["kl"] != first[1]["kl"]
    last = [r for r in rows if r["step"] == m.plan.n_steps - 1]
    assert all(r["kl"] == 0 and r["target_rank"] == 1 for r in last)
    assert all("kl_reference" in r and len(r["top"]) == 3 for r in rows)


def test_lens_bad_arguments(stories):
    m = strata_llm.Model(stories)
    with pytest.raises(ValueError, match="top_k"):
        strata_llm.lens(m, "hi", top_k=0)
    with pytest.raises(ValueError, match="positions"):
        strata_llm.lens(m, "hi", positions="some")
    with pytest.raises(strata_llm.LayerSpecError):
        strata_llm.lens(m, "hi", compare="0:99")
