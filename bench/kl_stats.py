"""Reading the KL-divergence report that `llama-perplexity --kl-divergence` and `strata perplexity
--kl-divergence` both print (the same words): "Mean PPL(Q)", "Mean KLD", "99.0% KLD", "Same top p", ...

parse_kl_report(text) -> {"Mean KLD": (value, uncertainty or None), "99.0% KLD": (value, None), ...}, labels with
runs of spaces folded to one; percentages stay in percent as printed. Only the closing report is read (from
"====== Perplexity statistics ======" on), not the per-chunk table.
"""

from __future__ import annotations

import re
import subprocess
import sys

_LINE = re.compile(r"^\s*(\S.*?)\s*:\s*(-?[0-9.]+|nan|-?inf)\s*(?:±\s*(-?[0-9.]+|nan|-?inf))?\s*%?\s*$")


def parse_kl_report(text: str) -> dict[str, tuple[float, float | None]]:
    at = text.find("====== Perplexity statistics ======")
    if at < 0:
        raise ValueError("no KL-divergence report (\"====== Perplexity statistics ======\") in:\n" + text[-2000:])
    out: dict[str, tuple[float, float | None]] = {}
    for line in text[at:].splitlines():
        m = _LINE.match(line)
        if m:
            label = re.sub(r"\s+", " ", m.group(1))
            out[label] = (float(m.group(2)), float(m.group(3)) if m.group(3) is not None else None)
    for need in ("Mean PPL(Q)", "Mean PPL(base)", "Mean KLD", "99.0% KLD", "Same top p"):
        if need not in out:
            raise ValueError(f"the KL-divergence report has no \"{need}\" line:\n" + text[at:at + 3000])
    return out


def as_json(stats: dict[str, tuple[float, float | None]]) -> dict[str, object]:
    """{"Mean KLD": [value, uncertainty], "99.0% KLD": value, ...} for a JSON record."""
    return {k: [v, e] if e is not None else v for k, (v, e) in stats.items()}


def run_for_report(cmd: list[str], tries: int = 5) -> str:
    """Runs a `--kl-divergence` command and returns its stdout once it holds the whole report. llama-perplexity
    (at least up to commit d32676d) logs from a worker thread that the process does not wait for at exit, so the
    last lines of its report are sometimes lost (its common/log.cpp says so); such a run is repeated."""
    for attempt in range(tries):
        print("+", " ".join(cmd), file=sys.stderr, flush=True)
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            sys.exit(f"{cmd[0]} failed ({p.returncode}):\n{p.stderr[-3000:]}")
        if "Same top p:" in p.stdout:
            return p.stdout
        print(f"(the report is cut short: run {attempt + 2} of at most {tries})", file=sys.stderr, flush=True)
    sys.exit(f"{cmd[0]} never printed its whole report in {tries} runs")
