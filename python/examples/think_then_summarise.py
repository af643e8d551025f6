#!/usr/bin/env python3
"""Think, then summarise: a thinker model reasons step by step, a summariser model answers from its thoughts
(as `strata think`, after chatllm.cpp's ya_o1.py; the prompts are strata's own, strata_llm.programs).

The thinker starts its reply with the ai-prefix "Let's break it down and think step by step.", then is made to
go on in that same message with each step's suffix (continue_); the whole message goes to the summariser.

    python think_then_summarise.py SmolLM2-135M-Instruct.Q4_1.gguf --thinker-spec 0:20,10:30 \\
        -q "If I have 3 apples and eat one, how many are left?"
"""

import argparse
import sys

import strata_llm
from strata_llm import programs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("thinker", help="the thinking model (GGUF)")
    ap.add_argument("summariser", nargs="?", help="the answering model (default: the thinker's file)")
    ap.add_argument("--thinker-spec", default=None, help="the thinker's layer spec")
    ap.add_argument(
        "-q", "--question", action="append", default=[], help="a question (repeatable; else stdin)"
    )
    ap.add_argument(
        "--steps", type=int, default=None, help="continuation steps (default: all of the defaults)"
    )
    ap.add_argument("--max-tokens", type=int, default=128, help="per thinking step and for the answer")
    args = ap.parse_args()

    thinker = strata_llm.Chat(
        strata_llm.Model(args.thinker, layer_spec=args.thinker_spec),
        ai_prefix=programs.THINK_PREFIX,
        temperature=0.7,
        max_tokens=args.max_tokens,
    )
    summariser = strata_llm.Chat(
        strata_llm.Model(args.summariser or args.thinker),
        system=programs.SUMMARIZER_SYSTEM,
        temperature=0,
        max_tokens=args.max_tokens,
    )
    steps = programs.default_think_steps()[: args.steps]
    questions = args.question or (line.strip() for line in sys.stdin if line.strip())
    try:
        for question in questions:
            print(f"Q: {question}")
            thinker.restart()
            print("--- think #1", flush=True)
            for piece in thinker.send(question, stream=True):
                print(piece, end="", flush=True)
            for i, step in enumerate(steps, start=2):
                print(f"\n--- think #{i}", flush=True)
                for piece in thinker.continue_(step, stream=True):
                    print(piece, end="", flush=True)
            thinking = thinker.history[-1]["content"]
            print("\n--- answer", flush=True)
            for piece in summariser.send(programs.summarizer_prompt(question, thinking), stream=True):
                print(piece, end="", flush=True)
            print("\n")
    except KeyboardInterrupt:
        print("\n[interrupted]")


if __name__ == "__main__":
    main()
