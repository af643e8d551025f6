#!/usr/bin/env python3
"""Perplexity of SmolLM2-135M-Instruct Q4_1 over tests/data/text/GPL-3.txt, by llama.cpp and by strata.

Runs llama.cpp's `llama-perplexity` (built by tests/reference/build_llamacpp.sh) and `strata perplexity` with
the same model, text, context and chunk count, parses both final estimates and writes
tests/golden/perplexity_smollm2.json. The test (tests/test_profiling.cpp, Perplexity.MatchesLlamaCpp) reruns
strata on configs[0] and compares with llama.cpp's number there.

The text is the GNU GPL v3 as Debian's base-files package ships it (/usr/share/common-licenses/GPL-3);
"everyone is permitted to copy and distribute verbatim copies of this license document".

Usage: python3 tests/reference/make_perplexity_golden.py [--strata build/strata] [--llamacpp DIR/bin]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CACHE = Path(os.environ.get("STRATA_CACHE", Path.home() / ".cache" / "strata"))
TEXT = REPO / "tests" / "data" / "text" / "GPL-3.txt"

# configs[0] is what the test reruns (small enough for a test on 2 cores); the others are for the record.
CONFIGS = [{"n_ctx": 128, "chunks": 6}, {"n_ctx": 512, "chunks": 14}]


def llamacpp_ppl(binary: Path, model: str, n_ctx: int, chunks: int, threads: int) -> tuple[float, float]:
    out = subprocess.run(
        [str(binary), "-m", model, "-f", str(TEXT), "-c", str(n_ctx), "--chunks", str(chunks), "-t", str(threads)],
        capture_output=True, text=True, check=True)
    m = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", out.stdout + out.stderr)
    if not m:
        sys.exit("no final estimate in llama-perplexity's output:\n" + out.stderr[-2000:])
    return float(m.group(1)), float(m.group(2))


def strata_ppl(binary: Path, model: str, n_ctx: int, chunks: int, threads: int) -> tuple[float, float]:
    out = subprocess.run(
        [str(binary), "perplexity", "-m", model, "-f", str(TEXT), "-c", str(n_ctx), "--chunks", str(chunks),
         "-t", str(threads)], capture_output=True, text=True, check=True)
    m = re.search(r"PPL = ([0-9.]+) ± ([0-9.]+)", out.stdout)
    if not m:
        sys.exit("no PPL in strata's output:\n" + out.stdout + out.stderr[-2000:])
    return float(m.group(1)), float(m.group(2))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(CACHE / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--llamacpp", default=str(CACHE / "llamacpp" / "build" / "bin"))
    ap.add_argument("--strata", default=str(REPO / "build" / "strata"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "tests" / "golden" / "perplexity_smollm2.json"))
    args = ap.parse_args()
    version = (Path(args.llamacpp).parent.parent / "VERSION.txt")
    rows = []
    for c in CONFIGS:
        lp, le = llamacpp_ppl(Path(args.llamacpp) / "llama-perplexity", args.model, c["n_ctx"], c["chunks"], args.threads)
        sp, se = strata_ppl(Path(args.strata), args.model, c["n_ctx"], c["chunks"], args.threads)
        rows.append({**c, "llamacpp_ppl": lp, "llamacpp_err": le, "strata_ppl": sp, "strata_err": se,
                     "rel_diff": round((sp - lp) / lp, 6)})
        print(rows[-1], file=sys.stderr)
    doc = {"model": Path(args.model).name, "text": "tests/data/text/GPL-3.txt",
           "llamacpp": version.read_text().strip().splitlines()[0] if version.exists() else "unknown",
           "method": "llama.cpp perplexity: chunks of n_ctx, BOS replaces each chunk's first token, "
                     "second half scored", "configs": rows}
    Path(args.out).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
