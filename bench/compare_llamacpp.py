#!/usr/bin/env python3
"""strata vs upstream llama.cpp on the same GGUF files, threads, depth and machine, interleaved in one run.

For each model and test (tg64, tg64 at depth 4096 with llama.cpp's flash attention on, pp512): rounds of
llama-bench and `strata bench` one after the other (who goes first alternating from round to round, so slow
drift of the machine hits both alike), each round -r repetitions; the medians, the spread (max / min) of each
side's samples, the ratio, and every row read against its limit measured in the same run: `strata bench`
measures the read bandwidth (its weights are streamed once per token) and the int8 dot-product peak on the same
threads before and after its tests, keeping the higher (CpuLimits, core/engine/sysinfo.h), and the row uses the
median of that model's probes.
The tests of one depth run in one invocation of each tool (one model load; at depth, one cache fill, which
llama-bench saves and restores for each repetition and `strata bench` fills once). Every model's depth-0 tests
come first, then the tests at depth; the section is rewritten after each step, so a run cut short keeps its
finished rows.

  % of limit (tg rows) = tok/s x (weight bytes + KV cache bytes read per token) / read probe; each side's own KV
                         cache (strata f32, llama.cpp's default f16) at the test's depth
  % of peak  (pp rows) = tok/s x 2 x the weight matrices' multiply-adds per token / int8 dot peak

Models: synthetic random-weight GGUFs of the Llama-3.2-1B shape at every weight type strata loads (and Q4_K_M /
Q5_K_M mixes laid out as llama.cpp's quantizer lays them), and of the Llama-3-8B shape at Q4_0 and Q4_K, written
by `strata synth` into $STRATA_CACHE/models/synthetic when missing; optional real files (smollm2, gemma3).

  bench/compare_llamacpp.py --llamacpp /work/llama.cpp-build/bin --llamacpp-src /work/llama.cpp-src \\
      [--build build] [--threads 2] [--models 1b-q4_0,...] [--tests tg64,tg64@d4096,pp512] [--out bench/RESULTS.md]
      [--big-tests tg64,pp512] [--rounds R --reps N] [--depth-rounds R --depth-reps N] [--big-rounds R --big-reps N]

Writes the "speed" section of --out (bench/results_md.py) and every sample to --raw (JSON). Rows whose decode is
under 97% of the probe take their explanation from bench/compare_notes.json ("model|test": text).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results_md  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("STRATA_CACHE", os.path.expanduser("~/.cache/strata"))
SYN = os.path.join(CACHE, "models", "synthetic")


def synthetic(shape: str, dtype: str, label: str):
    return (f"{label} {dtype} (synthetic)", os.path.join(SYN, f"{shape}-{dtype}.gguf"), (shape, dtype))


MODELS = {
    **{f"1b-{t.lower()}": synthetic("llama3.2-1b", t, "Llama-3.2-1B shape")
       for t in ("F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K", "Q4_K_M", "Q5_K_M")},
    "8b-q4_0": synthetic("llama3-8b", "Q4_0", "Llama-3-8B shape"),
    "8b-q4_k": synthetic("llama3-8b", "Q4_K", "Llama-3-8B shape"),
    "smollm2": ("SmolLM2-135M-Instruct Q4_1 (real)", os.path.join(CACHE, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"), None),
    "gemma3": ("Gemma 3 270M Q4_K_M (real)", os.path.join(CACHE, "models", "gemma-3-270m-q4_k_m.gguf"), None),
}
DEFAULT_MODELS = [k for k in MODELS if k.startswith(("1b-", "8b-"))]


def parse_test(name: str):
    """'tg64', 'pp512', 'tg64@d4096', 'tg64@d4096/f16' -> (kind, tokens, depth, strata's cache type). llama.cpp
    keeps its default f16 cache; '/f16' runs strata with --cache-type f16 too (its default is f32)."""
    m = re.fullmatch(r"(tg|pp)(\d+)(?:@d(\d+))?(?:/(f16|f32))?", name)
    if not m:
        raise SystemExit(f"bad test '{name}' (use tg64, pp512, tg64@d4096, tg64@d4096/f16)")
    return m.group(1), int(m.group(2)), int(m.group(3) or 0), m.group(4) or "f32"


def run(cmd, timeout=7200):
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=timeout).stdout


def group_tests(tests):
    """Tests that one invocation of each tool runs together: same depth and strata cache type (a pp and a tg test
    share a model load and, at depth, the cache fill). -> [(depth, cache, [tests])], in first-seen order."""
    groups = {}
    for t in tests:
        _, _, depth, cache = parse_test(t)
        groups.setdefault((depth, cache), []).append(t)
    return [(d, c, ts) for (d, c), ts in groups.items()]


def sizes(tests):
    """(pp tokens, tg tokens) of a group's tests (0: none)."""
    pp = [parse_test(t)[1] for t in tests if parse_test(t)[0] == "pp"]
    tg = [parse_test(t)[1] for t in tests if parse_test(t)[0] == "tg"]
    if len(pp) > 1 or len(tg) > 1:
        raise SystemExit(f"tests {tests}: at most one pp and one tg test per depth and cache type")
    return (pp[0] if pp else 0), (tg[0] if tg else 0)


def llama_bench(bin_dir, model, threads, tests, depth, reps):
    """{test: (samples, llama-bench's row)} for a group of tests in one llama-bench run (the depth is filled
    once per run and restored for each repetition)."""
    p, n = sizes(tests)
    out = run([os.path.join(bin_dir, "llama-bench"), "-m", model, "-t", str(threads), "-r", str(reps),
               "-p", str(p), "-n", str(n), "-d", str(depth), "-fa", "1", "-o", "json"])
    rows = json.loads(out)
    got = {}
    for t in tests:
        kind, k, _, _ = parse_test(t)
        row = [r for r in rows if (r["n_prompt"], r["n_gen"]) == ((k, 0) if kind == "pp" else (0, k))]
        assert len(row) == 1, rows
        got[t] = (row[0].get("samples_ts") or [row[0]["avg_ts"]], row[0])
    return got


def strata_bench(strata, model, threads, tests, depth, cache, reps):
    """{test: (samples, strata bench's row)} for a group of tests in one `strata bench` run."""
    p, n = sizes(tests)
    out = run([strata, "bench", "-m", model, "-t", str(threads), "-r", str(reps), "-p", str(p), "-n", str(n),
               "-d", str(depth), "--cache-type", cache, "-o", "json"])
    rows = [r for r in json.loads(out) if r["spec"] == "base"]
    got = {}
    for t in tests:
        row = [r for r in rows if r["test"].startswith(parse_test(t)[0])]
        assert len(row) == 1, rows
        got[t] = (row[0]["samples"], row[0])
    return got


def spread(samples):
    return max(samples) / min(samples) if samples and min(samples) > 0 else 0.0


def cpu_name():
    info = open("/proc/cpuinfo").read()
    name = re.search(r"model name\s*:\s*(.*)", info).group(1).strip()
    fam = re.search(r"cpu family\s*:\s*(\d+)", info)
    mod = re.search(r"^model\s*:\s*(\d+)", info, re.M)
    arch = {(25, 17): "Zen 4", (25, 97): "Zen 4", (25, 1): "Zen 3", (26, 2): "Zen 5", (26, 17): "Zen 5"}
    if fam and mod:
        f, m = int(fam.group(1)), int(mod.group(1))
        name += f" (family {f}, model {m}" + (f": {arch[(f, m)]}" if (f, m) in arch else "") + ")"
    return name


def llama_commit(src, results):
    """The llama.cpp commit: its source checkout's HEAD where --llamacpp-src is a git tree, else the short
    commit llama-bench reports it was built from."""
    if src:
        r = subprocess.run(["git", "-C", src, "log", "-1", "--format=%H %cd"], capture_output=True, text=True)
        if r.stdout.strip():
            return r.stdout.strip()
    built = {r["llama_row"].get("build_commit") for r in results} - {None}
    return "build " + ", ".join(sorted(built)) if built else "unknown commit"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--llamacpp", required=True, help="folder with llama-bench (a build of upstream llama.cpp)")
    ap.add_argument("--llamacpp-src", default="", help="its git checkout or mirror, for the commit")
    ap.add_argument("--llamacpp-commit", default="", help="the commit it was built from, where no git tree says")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS))
    ap.add_argument("--tests", default="tg64,tg64@d4096,tg64@d4096/f16,pp512")
    ap.add_argument("--rounds", type=int, default=5, help="rounds of each side per test (1B and smaller)")
    ap.add_argument("--reps", type=int, default=1, help="repetitions per round")
    ap.add_argument("--depth-rounds", type=int, default=2, help="rounds of a test at depth (its cache is filled once per round)")
    ap.add_argument("--depth-reps", type=int, default=3)
    ap.add_argument("--big-rounds", type=int, default=2, help="rounds for the 8B shape (minutes per repetition)")
    ap.add_argument("--big-reps", type=int, default=2)
    ap.add_argument("--big-tests", default="", help="tests for the 8B shape (default: --tests)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "RESULTS.md"))
    ap.add_argument("--raw", default=os.path.join(ROOT, "bench", "compare_llamacpp.json"))
    ap.add_argument("--notes", default=os.path.join(ROOT, "bench", "compare_notes.json"))
    ap.add_argument("--render-only", action="store_true",
                    help="run nothing: rewrite the section from --raw (after editing --notes)")
    a = ap.parse_args()
    if a.render_only:
        raw = json.load(open(a.raw))
        notes = json.load(open(a.notes)) if os.path.exists(a.notes) else {}
        text = render(raw["meta"], raw["results"], notes)
        results_md.replace_section(a.out, "speed", text)
        print(text)
        return
    strata = os.path.join(a.build, "strata")
    models = a.models.split(",")
    for k in models:
        if k not in MODELS:
            raise SystemExit(f"unknown model '{k}' (choose from {', '.join(MODELS)})")
    tests, big_tests = a.tests.split(","), (a.big_tests or a.tests).split(",")
    for t in tests + big_tests:
        parse_test(t)

    # Steps: (model, depth, cache, tests), every model's tests at depth 0 first, then the next depth (a run cut
    # short keeps whole rows of the cheaper tests); the section is rewritten after each step.
    order = [(d, c) for d, c, _ in group_tests(tests + big_tests)]
    steps = []
    for key in models:
        for depth, cache, group in group_tests(big_tests if key.startswith("8b-") else tests):
            steps.append((order.index((depth, cache)), key, depth, cache, group))
    steps.sort(key=lambda st: (st[0], models.index(st[1])))

    started = time.strftime("%Y-%m-%d %H:%M"), os.getloadavg()[0]
    results = []  # one dict per (model, test)
    turn = 0  # rounds so far: who goes first alternates from round to round across the whole run
    for _, key, depth, cache, group in steps:
        label, path, synth = MODELS[key]
        if synth and not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            run([strata, "synth", "--shape", synth[0], "--type", synth[1], "-o", path])
        if not os.path.exists(path):
            print(f"skip {key}: {path} missing", file=sys.stderr)
            continue
        big = key.startswith("8b-")
        rounds, reps = ((a.big_rounds, a.big_reps) if big else
                        (a.depth_rounds, a.depth_reps) if depth else (a.rounds, a.reps))
        ours, ref = {t: [] for t in group}, {t: [] for t in group}
        probes, load = [], []
        info, ref_info = {}, {}
        for _ in range(rounds):
            load.append(os.getloadavg()[0])
            for side in (("llama", "strata") if turn % 2 == 0 else ("strata", "llama")):
                if side == "llama":
                    for t, (smp, row) in llama_bench(a.llamacpp, path, a.threads, group, depth, reps).items():
                        ref[t] += smp
                        ref_info[t] = row
                else:
                    got = strata_bench(strata, path, a.threads, group, depth, cache, reps)
                    for t, (smp, row) in got.items():
                        ours[t] += smp
                        info[t] = row
                    row = next(iter(got.values()))[1]
                    probes.append({"read_gbps": row["copy_bandwidth_gbps"], "int8_gops": row["int8_peak_gops"]})
            turn += 1
        for t in group:
            li = ref_info[t]
            results.append({"model": key, "label": label, "test": t, "strata": ours[t], "llama": ref[t],
                            "probes": probes, "load_1min": load, "strata_row": info[t],
                            "llama_row": {k: li.get(k) for k in ("type_k", "type_v", "flash_attn", "n_threads",
                                                                  "model_size", "n_depth", "build_commit")}})
            print(json.dumps({k: results[-1][k] for k in ("model", "test", "strata", "llama")}), file=sys.stderr)
        write(a, started, results)


def write(a, started, results):
    """The raw samples (--raw) and the speed section of --out, from the rows so far."""
    finished = time.strftime("%Y-%m-%d %H:%M"), os.getloadavg()[0]
    meta = {"strata_commit": results_md.commit(), "cpu": cpu_name(), "cores": os.cpu_count(),
            "llama_cpp": a.llamacpp_commit or llama_commit(a.llamacpp_src, results), "threads": a.threads,
            "started": started, "finished": finished, "argv": sys.argv[1:]}
    with open(a.raw, "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    notes = json.load(open(a.notes)) if os.path.exists(a.notes) else {}
    text = render(meta, results, notes)
    results_md.replace_section(a.out, "speed", text)
    print(text)


def limit_pcts(res):
    """(strata %, llama.cpp %, probe text) of a row: tg rows against the read probe, pp rows against the int8 peak."""
    kind = parse_test(res["test"])[0]
    row = res["strata_row"]
    ours, ref = statistics.median(res["strata"]), statistics.median(res["llama"])
    if kind == "tg":
        probe = statistics.median(p["read_gbps"] for p in res["probes"]) * 1e9
        weights = row["weight_read_gbps"] * 1e9 / row["tokens_per_second"]  # bytes per token
        kv_strata = row["kv_read_gbps"] * 1e9 / row["tokens_per_second"]  # its cache type, this depth
        elem = {"f16": 2, "f32": 4}
        kv_llama = kv_strata * elem[res["llama_row"]["type_k"]] / elem[row["kv_type"]]
        return (100 * ours * (weights + kv_strata) / probe, 100 * ref * (weights + kv_llama) / probe,
                f"{probe / 1e9:.1f} GB/s")
    peak = statistics.median(p["int8_gops"] for p in res["probes"]) * 1e9
    ops = row["int8_gops"] * 1e9 / row["tokens_per_second"]  # per token
    return 100 * ours * ops / peak, 100 * ref * ops / peak, f"{peak / 1e9:.0f} GOPS int8"


def render(meta, results, notes):
    loads = [x for r in results for x in r["load_1min"]]
    lines = [
        "# strata vs llama.cpp",
        "",
        f"Measured side by side in one run by `bench/compare_llamacpp.py` from {meta['started'][0]} to "
        f"{meta['finished'][0]}, strata commit {meta['strata_commit']}, llama.cpp {meta['llama_cpp']} (CPU backend, "
        f"GGML_NATIVE, OpenMP; `llama-bench -fa 1`, its default f16 KV cache). Machine: {meta['cpu']}, "
        f"{meta['cores']} cores, Linux; {meta['threads']} threads for both. 1-minute load average at the start of each "
        f"round: {min(loads):.2f} to {max(loads):.2f}." if loads else "",
        "",
        "Samples: strata's / llama.cpp's repetitions in the row. Each cell is the median of the samples of "
        "interleaved rounds (llama-bench and `strata bench` one after the other, who goes first alternating from "
        "round to round); spread = max / min of that side's samples. Limit: tg rows, the read bandwidth that "
        "`strata bench` measured before and after the tests of each of its runs, the higher of the two (a 512 MiB "
        "buffer streamed by every thread with AVX-512 loads; the median of that model's runs), against the weight "
        "bytes plus each side's KV cache bytes read per token; pp rows, the int8 dot-product peak measured the same "
        "way (vpdpbusd from registers), against 2 x the weight matrices' multiply-adds per token.",
        "",
        "| model | test | samples | strata t/s | spread | llama.cpp t/s | spread | ratio | limit (probe) | "
        "strata % of limit | llama.cpp % of limit | below 97%: why |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    order = list(MODELS)  # rows by model as MODELS lists them, then tg, tg at depth, pp
    for res in sorted(results, key=lambda r: (order.index(r["model"]), parse_test(r["test"])[0] == "pp",
                                              parse_test(r["test"])[2])):
        ours, ref = statistics.median(res["strata"]), statistics.median(res["llama"])
        p_ours, p_ref, probe = limit_pcts(res)
        kind = parse_test(res["test"])[0]
        note = ""
        if kind == "tg" and p_ours < 97:
            note = notes.get(f"{res['model']}|{res['test']}", "(not explained yet)")
        test = res["test"].replace("@d", " @ d").replace("/f16", ", strata --cache-type f16")
        n = f"{len(res['strata'])} / {len(res['llama'])}"
        lines.append(f"| {res['label']} | {test} | {n} | {ours:.2f} | {spread(res['strata']):.3f} | {ref:.2f} | "
                     f"{spread(res['llama']):.3f} | {ours / ref:.2f}x | {probe} | {p_ours:.1f}% | {p_ref:.1f}% | {note} |")
    lines += ["", "Command: `python3 bench/compare_llamacpp.py " + " ".join(meta["argv"]) + "` (every sample: "
              "bench/compare_llamacpp.json).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
