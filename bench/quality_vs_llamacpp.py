#!/usr/bin/env python3
"""Perplexity and fidelity of strata vs llama.cpp's llama-perplexity on a real calibration text, and a
`strata profile` run.

Perplexity: for each model, `llama-perplexity` and `strata perplexity` with the same model, text, -c, --chunks
and threads; the two final estimates and their relative difference (the target: within 0.5%).

Fidelity (llama.cpp's own terms): for SmolLM2 and Gemma 3, llama.cpp writes a KL-divergence base with flash
attention off (`--kl-divergence-base`, its default F16 K/V cache), then three runs score against it with
`--kl-divergence`: strata, llama.cpp with flash attention on (llama.cpp's own spread), and llama.cpp with an F32
K/V cache (what the F16 cache alone moves). Mean KLD, 99% KLD, same top p and the PPL ratio, as each program
prints them (the same words), go into bench/RESULTS.md. The base (2 bytes per vocabulary entry per scored token:
2.7 GB for Gemma 3 at 20 chunks of 512) is written to --scratch and removed.

Profile: `strata profile` over SmolLM2 with several layer specs (and --draft-max, so each spec is also tried as a
self-speculative draft of the base), writing profile.{csv,json,svg} to bench/profile/ and the table into
bench/RESULTS.md. The SVG is also rendered to PNG when rsvg-convert (Debian librsvg2-bin) is there.

Texts: bench/get_calibration_text.py (Jane Austen's novels from Debian r-cran-janeaustenr), fetched when
missing. SmolLM2 and Gemma 3 read Pride and Prejudice; stories260K (a TinyStories model: no package ships children's
stories of that kind, see get_calibration_text.py) reads Persuasion.

  bench/quality_vs_llamacpp.py [--build build] [--llamacpp DIR/bin [--llamacpp-version TEXT]] [--threads 2]
                               [--chunks 100] [--fidelity-chunks 20] [--no-perplexity] [--no-fidelity]
                               [--no-profile] [--out bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kl_stats  # noqa: E402
import results_md  # noqa: E402

ROOT = results_md.ROOT
CACHE = os.environ.get("STRATA_CACHE", os.path.expanduser("~/.cache/strata"))
TEXT_DIR = os.path.join(CACHE, "text")
SMOL = os.path.join(CACHE, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
GEMMA = os.path.join(CACHE, "models", "gemma-3-270m-q4_k_m.gguf")
STORIES = os.path.normpath(os.path.join(ROOT, "..", "shared", "models", "stories260K.gguf"))
# (label, model, text file, n_ctx)
RUNS = [
    ("SmolLM2-135M-Instruct Q4_1", SMOL, "austen-pride-and-prejudice.txt", 512),
    ("stories260K", STORIES, "austen-persuasion.txt", 512),
    ("Gemma 3 270M Q4_K_M", GEMMA, "austen-pride-and-prejudice.txt", 512),
]
# Pruned drafts (the last two: what `--draft-spec auto` picks on SmolLM2, and the example) and a
# self-merge.
PROFILE_SPECS = ["0:26,28:", "0:24,26:", "0:20,24:", "0:12,16:", "0:10,10:20:2,20:", "0:4,2:30"]


def run(cmd: list[str]) -> str:
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return p.stdout + p.stderr


def short(cmd: list[str]) -> str:
    """The command as run from the checkout: paths relative to it, the cache as ~/.cache/strata."""
    def one(c: str) -> str:
        if c.startswith(CACHE):
            return c.replace(CACHE, "~/.cache/strata", 1)
        if os.path.isabs(c) and os.path.exists(c):
            return os.path.relpath(c, ROOT)
        return f'"{c}"' if "," in c or " " in c else c
    return " ".join(one(c) for c in cmd)


# (label, model) for the fidelity table; both read RUNS[0]'s text at -c 512.
FIDELITY = [("SmolLM2-135M-Instruct Q4_1", SMOL), ("Gemma 3 270M Q4_K_M", GEMMA)]


def fidelity(a: argparse.Namespace, strata: str, version: str, source: str) -> None:
    ppl = os.path.join(a.llamacpp, "llama-perplexity")
    text = os.path.join(TEXT_DIR, RUNS[0][2])
    rows, cmds = [], []
    load = os.getloadavg()[0]
    for label, model in FIDELITY:
        if not os.path.exists(model):
            print(f"skipping {label}: no {model}", file=sys.stderr)
            continue
        common = ["-m", model, "-c", "512", "-t", str(a.threads)]
        with tempfile.TemporaryDirectory(dir=a.scratch) as tmp:
            base = os.path.join(tmp, "base.kld")
            make = [ppl, *common, "-f", text, "--chunks", str(a.fidelity_chunks), "-fa", "off",
                    "--kl-divergence-base", base]
            run(make)
            score = ["--kl-divergence-base", base, "--kl-divergence"]
            runs = [("strata", [strata, "perplexity", *common, *score]),
                    ("llama.cpp, flash attention on", [ppl, *common, "-fa", "on", *score]),
                    ("llama.cpp, F32 K/V cache", [ppl, *common, "-fa", "off", "-ctk", "f32", "-ctv", "f32", *score])]
            cmds.append(short(["BASE" if c == base else c for c in make]))
            for what, cmd in runs:
                st = kl_stats.parse_kl_report(kl_stats.run_for_report(cmd))
                cmds.append(short(["BASE" if c == base else c for c in cmd]))
                kld, top, ratio = st["Mean KLD"], st["Same top p"], st["Mean PPL(Q)/PPL(base)"]
                rows.append(f"| {label} | {what} | {kld[0]:.6f} ± {kld[1]:.6f} | {st['99.0% KLD'][0]:.6f} | "
                            f"{top[0]:.3f} ± {top[1]:.3f} % | {ratio[0]:.6f} ± {ratio[1]:.6f} |")
                print(rows[-1], file=sys.stderr)
    n_scored = a.fidelity_chunks * (512 - 256 - 1)
    lines = [
        "## Fidelity: strata vs llama.cpp in llama.cpp's own terms (KL divergence)",
        "",
        f"Measured by `bench/quality_vs_llamacpp.py` on {results_md.today()}, strata commit {results_md.commit()}; "
        f"machine: {results_md.machine()}; {a.threads} threads (load average {load:.1f} at the start). llama.cpp: "
        f"{version}. Text: {RUNS[0][2]} ({source.replace('package: ', '').split(' (')[0]}), the first "
        f"{a.fidelity_chunks} chunks "
        f"of 512 tokens ({n_scored:,} scored tokens, the second half of each chunk less its last).",
        "",
        "llama.cpp wrote the base with flash attention off and its default F16 K/V cache "
        "(`llama-perplexity --kl-divergence-base`); each row scored the same tokens against it with "
        "`--kl-divergence` and printed the numbers below in the same words (Mean KLD, 99.0% KLD, Same top p, "
        "Mean PPL(Q)/PPL(base)). The llama.cpp rows are llama.cpp's own spread: what switching flash attention "
        "on, or keeping K/V in F32 as strata does, moves it by. KLD is the full KL over the vocabulary (entries "
        "more than 16 nats below the top left out, as llama.cpp does), in nats.",
        "",
        "| model | scored against llama.cpp (FA off) | mean KLD | 99% KLD | same top p | PPL(Q)/PPL(base) |",
        "|---|---|--:|--:|--:|--:|",
        *rows,
        "",
        "Commands (BASE: the base file, in a scratch folder, removed afterwards):",
        "",
        *[f"    {c}" for c in cmds],
    ]
    results_md.replace_section(a.out, "fidelity", "\n".join(lines))


def llamacpp_version(a: argparse.Namespace) -> str:
    if a.llamacpp_version:
        return a.llamacpp_version
    version = os.path.join(a.llamacpp, "..", "..", "VERSION.txt")
    if os.path.exists(version):
        return open(version).read().splitlines()[0] + ", built by tests/reference/build_llamacpp.sh"
    return "a build of " + a.llamacpp + " (no VERSION.txt: give --llamacpp-version)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--llamacpp", default=os.path.join(CACHE, "llamacpp", "build", "bin"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--chunks", type=int, default=100)
    ap.add_argument("--profile-chunks", type=int, default=20)
    ap.add_argument("--draft-max", type=int, default=3)
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--no-perplexity", action="store_true")
    ap.add_argument("--no-fidelity", action="store_true")
    ap.add_argument("--fidelity-chunks", type=int, default=20)
    ap.add_argument("--scratch", default=None, help="folder for the fidelity bases (default: the temp folder)")
    ap.add_argument("--llamacpp-version", default="", help="describes the llama.cpp build (commit, source)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "RESULTS.md"))
    a = ap.parse_args()
    strata = os.path.join(a.build, "strata")
    if not os.path.exists(os.path.join(TEXT_DIR, "SOURCE.txt")):
        run([sys.executable, os.path.join(ROOT, "bench", "get_calibration_text.py")])
    if not os.path.exists(os.path.join(a.llamacpp, "llama-perplexity")):
        run(["bash", os.path.join(ROOT, "tests", "reference", "build_llamacpp.sh")])
    version = llamacpp_version(a)
    source = open(os.path.join(TEXT_DIR, "SOURCE.txt")).read().splitlines()[0]
    if not a.no_fidelity:
        fidelity(a, strata, version, source)

    rows, cmds = [], []
    for label, model, text, n_ctx in [] if a.no_perplexity else RUNS:
        if not os.path.exists(model):  # the model cache (.ci/run fetches it) lacks it
            print(f"skipping {label}: no {model}", file=sys.stderr)
            continue
        path = os.path.join(TEXT_DIR, text)
        common = ["-m", model, "-f", path, "-c", str(n_ctx), "--chunks", str(a.chunks), "-t", str(a.threads)]
        ref_cmd = [os.path.join(a.llamacpp, "llama-perplexity")] + common
        ours_cmd = [strata, "perplexity"] + common
        ref = run(ref_cmd)
        m = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", ref)
        if not m:
            sys.exit("no final estimate in llama-perplexity's output:\n" + ref[-2000:])
        ours = run(ours_cmd)
        o = re.search(r"PPL = ([0-9.]+) ± ([0-9.]+)\s+\((\d+) tokens scored, (\d+) chunks", ours)
        n_tok = re.search(r"perplexity: (\d+) tokens", ours)
        if not o or not n_tok:
            sys.exit("no PPL in strata's output:\n" + ours[-2000:])
        lp, sp = float(m.group(1)), float(o.group(1))
        rel = (sp - lp) / lp
        rows.append(f"| {label} | {text} ({int(n_tok.group(1)):,} tokens) | {n_ctx} | {o.group(4)} | {o.group(3)} | "
                    f"{lp:.4f} ± {float(m.group(2)):.4f} | {sp:.4f} ± {float(o.group(2)):.4f} | {100 * rel:+.3f}% | "
                    f"{'yes' if abs(rel) <= 0.005 else 'NO'} |")
        cmds += [short(ref_cmd), short(ours_cmd)]
        print(rows[-1], file=sys.stderr)

    lines = [
        "## Perplexity: strata vs llama.cpp's llama-perplexity",
        "",
        f"Measured by `bench/quality_vs_llamacpp.py` on {results_md.today()}, strata commit {results_md.commit()}; "
        f"machine: {results_md.machine()}; {a.threads} threads. llama.cpp: {version}. "
        "Text: " + source.replace("package: ", "") +
        ", written by bench/get_calibration_text.py into ~/.cache/strata/text/. Same method on both sides: chunks "
        "of -c tokens, BOS replacing each chunk's first token, the second half of each chunk scored.",
        "",
        "| model | text (tokens in the whole text) | -c | chunks | tokens scored | llama.cpp PPL | strata PPL | "
        "difference | within 0.5% |",
        "|---|---|--:|--:|--:|--:|--:|--:|---|",
        *rows,
        "",
        "stories260K is a TinyStories model (vocabulary of 512): no Debian or PyPI package was found that ships "
        "children's stories of that kind, so it reads Austen's Persuasion; its perplexity is high for that "
        "reason, and the comparison still checks the whole path (SentencePiece tokenizer with byte fallback, "
        "chunking, scoring) against llama.cpp.",
        "",
        "Commands:",
        "",
        *[f"    {c}" for c in cmds],
    ]
    if not a.no_perplexity:
        results_md.replace_section(a.out, "perplexity", "\n".join(lines))

    if a.no_profile:
        return
    out_dir = os.path.join(ROOT, "bench", "profile")
    prof_cmd = [strata, "profile", "-m", SMOL, "-f", os.path.join(TEXT_DIR, RUNS[0][2]), "-c", "512", "--chunks",
                str(a.profile_chunks), "-t", str(a.threads), "--draft-max", str(a.draft_max), "-q", "-o", out_dir]
    for s in PROFILE_SPECS:
        prof_cmd += ["--spec", s]
    load = os.getloadavg()[0]
    table = run(prof_cmd)
    table = "\n".join(line for line in table.splitlines() if line.startswith("|"))
    png = ""
    if shutil.which("rsvg-convert"):
        run(["rsvg-convert", "-o", os.path.join(out_dir, "profile.png"), os.path.join(out_dir, "profile.svg")])
        png = " and rendered to bench/profile/profile.png by rsvg-convert"
    lines = [
        "## strata profile: SmolLM2 layer specs over Pride and Prejudice",
        "",
        f"Measured by `bench/quality_vs_llamacpp.py` on {results_md.today()}, strata commit {results_md.commit()}; "
        f"machine: {results_md.machine()}; {a.threads} threads; load average {load:.1f} at the start (with other "
        "jobs on the cores, speeds are noisy: compare within the table). KL and top-1 agreement are against the base's next-token distributions on the same tokens. "
        f"The draft columns treat each spec as a self-speculative draft of the base (--draft-max {a.draft_max}, "
        "greedy, the text's first tokens as prompt, identical output): acceptance of drafted tokens and decode "
        "speed relative to plain greedy decoding. CSV, JSON and the plot (SVG, bench/profile/profile.svg" + png +
        ") are in bench/profile/.",
        "",
        table,
        "",
        "Command:",
        "",
        "    " + short(prof_cmd),
    ]
    results_md.replace_section(a.out, "profile", "\n".join(lines))


if __name__ == "__main__":
    main()
