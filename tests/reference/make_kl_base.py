#!/usr/bin/env python3
"""The kernels' fidelity guard: a llama.cpp KL-divergence base of stories260K over tests/data/text/GPL-3.txt,
and llama.cpp's own flash-attention band against it, written to tests/data/kl/.

Runs a llama.cpp built from its source (any build: pass --llamacpp DIR/bin and the commit it was built from):

  1. llama-perplexity -m stories260K.gguf -f GPL-3.txt -c 256 --chunks 6 -fa off -ctk f32 -ctv f32
         --kl-divergence-base tests/data/kl/stories260K-gpl3-c256.kld            (the base, ~790 KB)
  2. the same model against it with --kl-divergence, -fa on and -fa off: llama.cpp's own band (FA on vs off) and
     the coding floor (off vs off: only the 16-bit coding differs);
  3. for the record: llama.cpp's default F16 KV cache against the base, strata against it, and llama.cpp reading
     a base that strata wrote (compatibility the other way);
and writes every command and number to tests/data/kl/stories260K-gpl3-c256.json, which the test
(tests/test_kl_divergence.cpp, KlGuard.*) reads.

Why an F32 KV cache: strata keeps K and V in F32; llama.cpp's default F16 cache alone puts 5e-6 of mean KLD
between the two (recorded here as default_kv_fa_off), which would hide strata's own deviations. With F32 K/V
llama.cpp's FA-off run and strata agree to the coding floor, and the band (FA on rounds K/V to F16 inside its
kernel whatever the cache type) is what separates llama.cpp from itself.

Usage: python3 tests/reference/make_kl_base.py --llamacpp DIR/bin --llamacpp-commit SHA [--strata build/strata]
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "bench"))
import kl_stats  # noqa: E402
import results_md  # noqa: E402

TEXT = REPO / "tests" / "data" / "text" / "GPL-3.txt"
OUT = REPO / "tests" / "data" / "kl"
NAME = "stories260K-gpl3-c256"
N_CTX, CHUNKS = 256, 6


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(cmd: list[str]) -> str:
    """stdout (llama.cpp prints its report there; its log goes to stderr, kept apart: interleaved in one file the
    report's end can be lost)."""
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return p.stdout


def shown(cmd: list[str]) -> str:
    def one(c: str) -> str:
        for prefix, name in ((str(REPO) + "/", ""), (str(REPO.parent / "shared"), "../shared"), (str(Path.home()), "~")):
            if c.startswith(prefix):
                return name + c[len(prefix):]
        return c
    return " ".join(one(c) for c in cmd)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--llamacpp", required=True, help="folder of llama-perplexity")
    ap.add_argument("--llamacpp-commit", required=True, help="the llama.cpp commit that binary was built from")
    ap.add_argument("--llamacpp-source", default="github.com/unslothai/llama.cpp (a mirror of ggml-org/llama.cpp)")
    ap.add_argument("--strata", default=str(REPO / "build" / "strata"))
    ap.add_argument("--model", default=str(REPO.parent / "shared" / "models" / "stories260K.gguf"))
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    ppl = str(Path(a.llamacpp) / "llama-perplexity")
    base = OUT / f"{NAME}.kld"
    OUT.mkdir(parents=True, exist_ok=True)
    common = ["-m", a.model, "-c", str(N_CTX), "-t", str(a.threads)]
    f32_kv = ["-ctk", "f32", "-ctv", "f32"]
    cmds: dict[str, list[str]] = {
        "base": [ppl, *common, "-f", str(TEXT), "--chunks", str(CHUNKS), "-fa", "off", *f32_kv,
                 "--kl-divergence-base", str(base)],
        "fa_on": [ppl, *common, "-fa", "on", *f32_kv, "--kl-divergence-base", str(base), "--kl-divergence"],
        "fa_off": [ppl, *common, "-fa", "off", *f32_kv, "--kl-divergence-base", str(base), "--kl-divergence"],
        "default_kv_fa_off": [ppl, *common, "-fa", "off", "--kl-divergence-base", str(base), "--kl-divergence"],
        "strata": [a.strata, "perplexity", *common, "--kl-divergence-base", str(base), "--kl-divergence"],
    }
    run(cmds["base"])
    results = {k: kl_stats.as_json(kl_stats.parse_kl_report(kl_stats.run_for_report(c)))
               for k, c in cmds.items() if k != "base"}
    with tempfile.TemporaryDirectory() as tmp:  # llama.cpp reading strata's base of the same text
        theirs = Path(tmp) / "strata.kld"
        write = [a.strata, "perplexity", *common, "-f", str(TEXT), "--chunks", str(CHUNKS),
                 "--kl-divergence-base", str(theirs)]
        run(write)
        same_head = theirs.read_bytes()[:20 + 4 * N_CTX * CHUNKS] == base.read_bytes()[:20 + 4 * N_CTX * CHUNKS]
        read = [ppl, *common, "-fa", "off", *f32_kv, "--kl-divergence-base", str(theirs), "--kl-divergence"]
        results["llamacpp_reads_strata_base"] = kl_stats.as_json(kl_stats.parse_kl_report(kl_stats.run_for_report(read)))
        results["llamacpp_reads_strata_base"]["same header and tokens as llama.cpp's base"] = same_head
        cmds["strata_writes"], cmds["llamacpp_reads_strata_base"] = write, read
    strata_commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                   text=True).stdout.strip()
    doc = {
        "what": "llama.cpp KL-divergence base of stories260K over GPL-3.txt, and llama.cpp's flash-attention band "
                "against it; tests/test_kl_divergence.cpp (KlGuard.*) keeps strata inside the band",
        "file": base.name, "file_sha256": sha256(base), "file_bytes": base.stat().st_size,
        "model": Path(a.model).name, "model_sha256": sha256(Path(a.model)),
        "text": "tests/data/text/GPL-3.txt", "text_sha256": sha256(TEXT),
        "n_ctx": N_CTX, "chunks": CHUNKS, "scored_tokens": CHUNKS * (N_CTX - N_CTX // 2 - 1),
        "llamacpp": {"commit": a.llamacpp_commit, "source": a.llamacpp_source, "binary": "llama-perplexity"},
        "made": {"date": str(datetime.date.today()), "machine": results_md.machine(), "threads": a.threads,
                 "strata_commit": strata_commit},
        "commands": {k: shown(c) for k, c in cmds.items()},
        "results": results,
        "notes": {
            "fa_on": "llama.cpp's band: flash attention on vs the base's off (same F32 KV cache setting)",
            "fa_off": "the coding floor: the base's own settings; only the 16-bit coding of the log-probs differs",
            "default_kv_fa_off": "llama.cpp's default F16 KV cache against the F32-cache base (why the base uses F32)",
            "strata": "strata (build of strata_commit) against the base when it was made",
            "llamacpp_reads_strata_base": "llama.cpp (FA off, F32 KV) scoring a base strata wrote for the same text",
        },
    }
    (OUT / f"{NAME}.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps(results, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
