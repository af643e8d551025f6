#!/usr/bin/env python3
"""Two models talk to each other (as `strata crosstalk`, after chatllm.cpp's crosstask.py).

A says the opening line, B answers, A answers B, ... for --turns replies. The two may be one file (mapped
once: each side has its own plan, KV cache, sampler and history), e.g. a model and its pruned or self-merged
self:

    python two_models_talking.py SmolLM2-135M-Instruct.Q4_1.gguf --b-spec 0:20,10:30 --turns 6
    python two_models_talking.py A.gguf B.gguf -p "Let's plan a trip to the mountains."
"""

import argparse

import strata_llm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", help="model A (GGUF)")
    ap.add_argument("b", nargs="?", help="model B (default: A's file again)")
    ap.add_argument("--a-spec", default=None, help="A's layer spec")
    ap.add_argument("--b-spec", default=None, help="B's layer spec")
    ap.add_argument("--names", nargs=2, default=["Alice", "Bob"], metavar=("A", "B"))
    ap.add_argument("-p", "--opening", default="Hi! What did you do today?", help="A's opening line")
    ap.add_argument("--turns", type=int, default=6, help="replies to generate (B, A, B, ...)")
    ap.add_argument("--max-tokens", type=int, default=96, help="per reply")
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    names = args.names
    models = [
        strata_llm.Model(args.a, layer_spec=args.a_spec),
        strata_llm.Model(args.b or args.a, layer_spec=args.b_spec),
    ]
    chats = [
        strata_llm.Chat(
            model,
            system=f"You are {me}, chatting with your friend {other}. Answer in one or two short sentences.",
            max_tokens=args.max_tokens,
            temperature=args.temperature,
            seed=args.seed + i,
        )
        for i, (model, me, other) in enumerate(zip(models, names, reversed(names)))
    ]
    for name, model in zip(names, models):
        plan = model.plan
        print(f"[{name}: {plan.n_steps} steps over {plan.n_layers} layers of {model.path}]")
    files = strata_llm.mapped_files()
    print(f"[{len(files)} file(s) mapped, {sum(f['mapped_bytes'] for f in files) / 2**20:.0f} MiB in all]")

    # A said the opening line: it is A's own message, and B's first input.
    chats[0].add_message("assistant", args.opening)
    print(f"{names[0]} > {args.opening}")
    said = args.opening
    try:
        for turn in range(args.turns):
            who = 1 - turn % 2
            print(f"{names[who]} > ", end="", flush=True)
            for piece in chats[who].send(said, stream=True):
                print(piece, end="", flush=True)
            print()
            said = chats[who].history[-1]["content"]
    except KeyboardInterrupt:
        print("\n[interrupted]")


if __name__ == "__main__":
    main()
