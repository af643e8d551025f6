#!/usr/bin/env python3
"""Three Cobblers: a router model picks, per question, the expert model that answers (as `strata cobblers`,
after chatllm.cpp's threecobblers.py; the router's prompt and the reading of its reply are strata's own,
strata_llm.programs).

    python three_cobblers.py ROUTER.gguf --expert Programming=code.gguf --expert Maths=math.gguf \\
        --expert Others=chat.gguf -q "Write a Python function that reverses a string."
    python three_cobblers.py SmolLM2-135M-Instruct.Q4_1.gguf       # one model as router and every expert

Without --expert, the router's own file serves as three experts (each with its own system prompt). Without
-q, questions are read from stdin, one per line.
"""

import argparse
import sys

import strata_llm
from strata_llm import programs

DEFAULT_DOMAINS = {
    "Programming": "You are an expert programmer. Answer with short, correct code.",
    "Maths": "You are a mathematician. Answer step by step, briefly.",
    "Others": "You are a helpful assistant. Answer briefly.",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("router", help="the router model (GGUF)")
    ap.add_argument(
        "--expert", action="append", default=[], metavar="DOMAIN=FILE", help="an expert (repeatable)"
    )
    ap.add_argument(
        "--spec", action="append", default=[], metavar="DOMAIN=SPEC", help="an expert's layer spec"
    )
    ap.add_argument("-q", "--question", action="append", default=[], help="a question (repeatable)")
    ap.add_argument("--max-tokens", type=int, default=128, help="per answer")
    ap.add_argument("-v", "--verbose", action="store_true", help="print the router's raw reply")
    args = ap.parse_args()

    experts = dict(e.split("=", 1) for e in args.expert) or {d: args.router for d in DEFAULT_DOMAINS}
    specs = dict(s.split("=", 1) for s in args.spec)
    domains = list(experts)
    # The router classifies deterministically and briefly, restarted for every question.
    router = strata_llm.Chat(strata_llm.Model(args.router), temperature=0, max_tokens=64)
    chats = {
        d: strata_llm.Chat(
            strata_llm.Model(path, layer_spec=specs.get(d)),
            system=DEFAULT_DOMAINS.get(d),
            max_tokens=args.max_tokens,
        )
        for d, path in experts.items()
    }
    mapped = len(strata_llm.mapped_files())
    print(f"[router {args.router}; experts: {', '.join(domains)}; {mapped} file(s) mapped]")

    questions = args.question or (line.strip() for line in sys.stdin if line.strip())
    try:
        for question in questions:
            router.restart()
            reply = router.send(programs.router_prompt(domains, question))
            index, reason = programs.choose_domain(reply, domains)
            domain = domains[index]
            if args.verbose:
                print(f"[router reply] {reply}")
            print(f"Q: {question}\n[{domain}: {reason}]")
            expert = chats[domain]
            expert.restart()
            for piece in expert.send(question, stream=True):
                print(piece, end="", flush=True)
            print("\n")
    except KeyboardInterrupt:
        print("\n[interrupted]")


if __name__ == "__main__":
    main()
