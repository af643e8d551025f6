#!/usr/bin/env python3
"""Load test of strata serve beside llama.cpp's llama-server (not part of CI): the same model file, threads and
slots; for 1, 4 and 16 concurrent streams, the aggregate generated tokens per second and the median and p99
time to first token. Bounded: each of the C streams sends --rounds requests one after another (streamed
completions of --max-tokens tokens, ignore_eos so every request generates exactly that many), every request has
a timeout, and each server is stopped after its runs. Loopback only.

    python3 bench/serve_load.py --model ~/.cache/strata/models/SmolLM2-135M-Instruct.Q4_1.gguf \\
        --llama-server /work/llama.cpp-build/bin/llama-server --runs 3

Runs in the shared venv (.ci/setup: httpx). Prints a Markdown table; --json FILE keeps every run.
"""
import argparse
import asyncio
import json
import os
import pathlib
import re
import signal
import socket
import statistics
import subprocess
import sys
import time

import httpx

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROMPT = ("Once upon a time, in a small village at the edge of a great forest, there lived an old clockmaker "
          "who had one wish: to build a clock that would")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One server process on a free loopback port, ready once its /health says so."""

    def __init__(self, kind, argv, port):
        self.kind, self.port = kind, port
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{kind} did not start: {' '.join(argv)}")
            time.sleep(0.2)

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start(kind, args, model):
    port = free_port()
    if kind == "strata":
        argv = [args.strata, "serve", "-m", model, "--host", "127.0.0.1", "--port", str(port), "--parallel",
                str(args.slots), "-c", str(args.ctx), "-t", str(args.threads)]
    else:
        argv = [args.llama_server, "-m", model, "--host", "127.0.0.1", "--port", str(port), "-np", str(args.slots),
                "-c", str(args.slots * args.ctx), "-t", str(args.threads), "-tb", str(args.threads), "-ngl", "0",
                "--no-webui"]
    return Server(kind, argv, port)


async def one_request(client, url, max_tokens, tag):
    """A streamed completion; returns (seconds to the first text, tokens generated, seconds in all)."""
    # each request opens with its own tag, so no server can answer it from a cache of an earlier prompt
    # (llama-server keeps each slot's last prompt and would skip reading it again; strata has no prompt cache)
    body = {"prompt": f"Story {tag}. {PROMPT}", "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True,
            "stream": True, "stream_options": {"include_usage": True}}
    t0 = time.perf_counter()
    first, tokens, chunks = None, None, 0
    async with client.stream("POST", url + "/v1/completions", json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            ev = json.loads(line[6:])
            if ev.get("usage"):
                tokens = ev["usage"]["completion_tokens"]
            for c in ev.get("choices", []):
                if c.get("text"):
                    chunks += 1
                    if first is None:
                        first = time.perf_counter() - t0
    return first, tokens if tokens is not None else chunks, time.perf_counter() - t0


async def level(url, streams, rounds, max_tokens, timeout):
    """`streams` clients, each sending `rounds` requests in turn; aggregate tok/s and first-token times."""
    # a fresh connection per request: llama-server may close a kept-alive connection after a streamed reply,
    # which a reused connection reports as 'Server disconnected'; both servers get the same policy
    limits = httpx.Limits(max_connections=streams + 4, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        async def stream_worker(w):
            return [await one_request(client, url, max_tokens, f"{streams}-{w}-{i}-{time.time_ns()}")
                    for i in range(rounds)]

        t0 = time.perf_counter()
        results = await asyncio.wait_for(asyncio.gather(*[stream_worker(w) for w in range(streams)]),
                                         timeout=timeout * rounds)
        wall = time.perf_counter() - t0
    reqs = [r for w in results for r in w]
    ttft = sorted(r[0] for r in reqs)
    tokens = sum(r[1] for r in reqs)
    return {"streams": streams, "requests": len(reqs), "tokens": tokens, "seconds": wall, "tok_s": tokens / wall,
            "ttft_p50": statistics.median(ttft), "ttft_p99": ttft[min(len(ttft) - 1, int(0.99 * len(ttft)))]}


def others_busy(seconds=2.0):
    """The fraction of the machine's CPU time in use over `seconds` while our server is idle: other work."""
    def snap():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return v[3] + v[4], sum(v)  # idle + iowait, all
    i0, t0 = snap()
    time.sleep(seconds)
    i1, t1 = snap()
    return 1 - (i1 - i0) / max(1, t1 - t0)


def wait_until_quiet(limit, max_wait):
    """Waits (up to max_wait s) until other work takes at most `limit` of the CPUs; returns what it takes."""
    start = time.monotonic()
    while True:
        busy = others_busy()
        if busy <= limit or time.monotonic() - start > max_wait:
            return busy
        time.sleep(5)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True, help="GGUF file (repeat for more)")
    ap.add_argument("--strata", default=str(ROOT / "build" / "strata"))
    ap.add_argument("--llama-server", default="/work/llama.cpp-build/bin/llama-server")
    ap.add_argument("--servers", default="strata,llama-server")
    ap.add_argument("--streams", default="1,4,16")
    ap.add_argument("--slots", type=int, default=16)
    ap.add_argument("--ctx", type=int, default=512, help="context per slot")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=2, help="requests per stream per level")
    ap.add_argument("--runs", type=int, default=3, help="runs per level (the table shows medians)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per request")
    ap.add_argument("--max-busy", type=float, default=0.1,
                    help="before each level, wait (up to --max-wait s) until other work takes at most this fraction "
                         "of the CPUs (read from /proc/stat while the server is idle)")
    ap.add_argument("--max-wait", type=float, default=900)
    ap.add_argument("--json", help="write every run here")
    args = ap.parse_args()
    streams = [int(s) for s in args.streams.split(",")]
    rows, raw = [], []
    for model in args.model:
        for kind in args.servers.split(","):
            server = start(kind, args, model)
            try:
                asyncio.run(level(server.url, 1, 1, 8, args.timeout))  # warm-up
                for s in streams:
                    runs = []
                    for _ in range(args.runs):
                        busy = wait_until_quiet(args.max_busy, args.max_wait)
                        r = asyncio.run(level(server.url, s, args.rounds, args.max_tokens, args.timeout))
                        r.update(others_busy_before=busy, load_after=os.getloadavg()[0])
                        runs.append(r)
                    med = {k: statistics.median(r[k] for r in runs) for k in ("tok_s", "ttft_p50", "ttft_p99")}
                    busy = max(r["others_busy_before"] for r in runs)
                    rows.append((pathlib.Path(model).name, kind, s, med, busy))
                    raw.append({"model": model, "server": kind, "streams": s, "runs": runs})
                    print(f"{pathlib.Path(model).name} {kind} {s} streams: {med['tok_s']:.1f} tok/s, first token "
                          f"p50 {med['ttft_p50'] * 1000:.0f} ms p99 {med['ttft_p99'] * 1000:.0f} ms "
                          f"(others busy before: {busy:.0%}, load {os.getloadavg()[0]:.2f})", file=sys.stderr)
            finally:
                server.stop()
    print("| model | server | streams | generated tok/s | first token p50 | first token p99 | others' CPU before |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for model, kind, s, med, busy in rows:
        print(f"| {model} | {kind} | {s} | {med['tok_s']:.1f} | {med['ttft_p50'] * 1000:.0f} ms | "
              f"{med['ttft_p99'] * 1000:.0f} ms | {busy:.0%} |")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()
