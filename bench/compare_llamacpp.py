#!/usr/bin/env python3
"""strata vs llama.cpp on the same GGUF files, threads and machine, measured side by side in one run.

For each model: llama.cpp's llama-bench and `strata bench` (pp512 and tg128 by default, medians of -r
repetitions), a memory-read-bandwidth probe (bench_matmul's streaming sum) in the same run, and the ratio
table written to its section of bench/RESULTS.md (machine, commit, date).

Models: SmolLM2-135M-Instruct Q4_1 (real), and synthetic random-weight GGUFs that `strata synth` writes
(Llama-3.2-1B at Q4_0, Q4_K and Q8_0, Llama-3-8B at Q4_0), cached under $STRATA_CACHE/models/synthetic.

  bench/compare_llamacpp.py [--build build] [--threads 2] [--reps 3] [--models smollm2,1b-q4_0,...] [--out bench/RESULTS.md]

Models left out of --models keep their row from the previous run, marked with its commit.

llama.cpp comes from tests/reference/build_llamacpp.sh (PyPI llama-cpp-python's vendored tree, cached).
"""
import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results_md  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("STRATA_CACHE", os.path.expanduser("~/.cache/strata"))

MODELS = {
    "smollm2": ("SmolLM2-135M-Instruct Q4_1 (real)", os.path.join(CACHE, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"), None),
    "gemma3": ("Gemma 3 270M Q4_K_M (real)", os.path.join(CACHE, "models", "gemma-3-270m-q4_k_m.gguf"), None),
    "1b-q4_0": ("Llama-3.2-1B shape Q4_0 (synthetic)", os.path.join(CACHE, "models", "synthetic", "llama3.2-1b-Q4_0.gguf"), ("llama3.2-1b", "Q4_0")),
    "1b-q4_k": ("Llama-3.2-1B shape Q4_K (synthetic)", os.path.join(CACHE, "models", "synthetic", "llama3.2-1b-Q4_K.gguf"), ("llama3.2-1b", "Q4_K")),
    "1b-q8_0": ("Llama-3.2-1B shape Q8_0 (synthetic)", os.path.join(CACHE, "models", "synthetic", "llama3.2-1b-Q8_0.gguf"), ("llama3.2-1b", "Q8_0")),
    "8b-q4_0": ("Llama-3-8B shape Q4_0 (synthetic)", os.path.join(CACHE, "models", "synthetic", "llama3-8b-Q4_0.gguf"), ("llama3-8b", "Q4_0")),
}


def run(cmd, **kw):
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def llama_bench(bin_dir, model, threads, reps, n_prompt, n_gen):
    out = run([os.path.join(bin_dir, "llama-bench"), "-m", model, "-t", str(threads), "-r", str(reps),
               "-p", str(n_prompt), "-n", str(n_gen), "-o", "json"]).stdout
    res = {}
    for row in json.loads(out):
        test = f"pp{row['n_prompt']}" if row["n_prompt"] else f"tg{row['n_gen']}"
        samples = row.get("samples_ts") or [row["avg_ts"]]
        res[test] = statistics.median(samples)
    return res


def strata_bench(strata, model, threads, reps, n_prompt, n_gen):
    out = run([strata, "bench", "-m", model, "-t", str(threads), "-r", str(reps), "-p", str(n_prompt),
               "-n", str(n_gen), "-o", "json"]).stdout
    rows = json.loads(out)
    return {r["test"]: r["tokens_per_second"] for r in rows}, rows[0]["unique_weight_bytes"], rows[0]["isa"]


def bandwidth_gbs(bench_bin):
    """Read bandwidth from bench_matmul's memread probes (best median, GB/s), or None if unavailable."""
    if not os.path.exists(bench_bin):
        return None
    out = run([bench_bin, "--benchmark_filter=memread/", "--benchmark_repetitions=5",
               "--benchmark_report_aggregates_only=true", "--benchmark_format=json"]).stdout
    vals = [b["bytes_per_second"] for b in json.loads(out)["benchmarks"] if b.get("aggregate_name") == "median"]
    return max(vals) / 1e9 if vals else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--llamacpp", default=os.path.join(CACHE, "llamacpp", "build", "bin"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("-p", "--n-prompt", type=int, default=512)
    ap.add_argument("-n", "--n-gen", type=int, default=128)
    ap.add_argument("--models", default="smollm2,gemma3,1b-q4_0,1b-q4_k,1b-q8_0,8b-q4_0")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "RESULTS.md"))
    a = ap.parse_args()
    strata = os.path.join(a.build, "strata")
    if not os.path.exists(os.path.join(a.llamacpp, "llama-bench")):
        run(["bash", os.path.join(ROOT, "tests", "reference", "build_llamacpp.sh")], env={**os.environ, "SKIP_PYTHON": "1"})

    rows = []
    for key in a.models.split(","):
        label, path, synth = MODELS[key]
        if synth and not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            run([strata, "synth", "--shape", synth[0], "--type", synth[1], "-o", path])
        if not os.path.exists(path):
            print(f"skip {key}: {path} missing", file=sys.stderr)
            continue
        ref = llama_bench(a.llamacpp, path, a.threads, a.reps, a.n_prompt, a.n_gen)
        ours, weight_bytes, isa = strata_bench(strata, path, a.threads, a.reps, a.n_prompt, a.n_gen)
        rows.append((key, label, weight_bytes, isa, ours, ref))
    bw = bandwidth_gbs(os.path.join(a.build, "bench", "bench_matmul"))

    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    cpu = "?"
    try:
        cpu = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read()).group(1)
    except Exception:
        pass
    pp, tg = f"pp{a.n_prompt}", f"tg{a.n_gen}"
    lines = [
        "# strata vs llama.cpp",
        "",
        f"Measured side by side in one run by `bench/compare_llamacpp.py` on {datetime.date.today()}, strata commit "
        f"{commit}; machine: {cpu}, {os.cpu_count()} cores, {platform.system()}; {a.threads} threads for both; "
        f"medians of {a.reps} repetitions (llama-bench `-r`, `strata bench -r`). llama.cpp: the tree vendored by "
        "PyPI llama-cpp-python 0.3.36, built by tests/reference/build_llamacpp.sh (native flags).",
        "",
        f"Read bandwidth probe (one thread, streaming sum, same run): {bw:.1f} GB/s." if bw else "Read bandwidth probe: not built.",
        "",
        f"| model | strata kernels | {pp} strata | {pp} llama.cpp | ratio | {tg} strata | {tg} llama.cpp | ratio | decode GB/s | % of probe |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    # Models of the table not measured in this run keep their earlier row, marked with that run's commit (a
    # run of a few models does not drop the slow ones' rows).
    measured = {r[0] for r in rows}
    old = results_md.read_section(a.out, "speed")
    m = re.search(r"strata commit (\w+)", old)
    old_commit = m.group(1) if m else "?"
    kept = []  # (model key, table row): the rows kept from before, then this run's
    for line in old.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) < 3 or not line.startswith("| "):
            continue
        for key, (label, _, _) in MODELS.items():
            if key not in measured and cells[1].startswith(label):
                if "earlier" not in cells[1]:
                    line = line.replace(label, f"{label}, earlier run of commit {old_commit}", 1)
                kept.append((key, line))
    for key, label, wb, isa, ours, ref in rows:
        def ratio(t):
            return f"{ours[t] / ref[t]:.2f}x" if t in ours and t in ref and ref[t] else "-"
        gbs = ours.get(tg, 0) * wb / 1e9
        pct = f"{100 * gbs / bw:.0f}%" if bw else "-"
        kept.append((key, f"| {label} | {isa} | {ours.get(pp, 0):.1f} | {ref.get(pp, 0):.1f} | {ratio(pp)} | "
                     f"{ours.get(tg, 0):.1f} | {ref.get(tg, 0):.1f} | {ratio(tg)} | {gbs:.1f} | {pct} |"))
    order = list(MODELS)
    lines += [line for _, line in sorted(kept, key=lambda kl: order.index(kl[0]))]  # the models' order, old or new
    lines += ["", "A row marked \"earlier run of commit X\" was not measured in this run (--models) and is kept from the "
              "section as it was." if any("earlier" in line for _, line in kept) else ""]
    lines += ["", "Decode GB/s = generation tok/s x the model's weight bytes (every matrix is read once per token; for "
              "an untied model this also counts the input embedding table, of which decode reads one row, so it "
              "overstates Llama-3-8B's by about 6%). % of probe compares it with the one-thread probe above; decode runs "
              "on all the threads given, which together can read faster than one.", ""]
    text = "\n".join(lines)
    results_md.replace_section(a.out, "speed", text)  # the other scripts' sections stay
    print(text)


if __name__ == "__main__":
    main()
