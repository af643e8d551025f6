#!/usr/bin/env python3
"""A spec sweep: perplexity against size for pruned and self-merged layer specs of one model, plotted.

The pruned specs come from the model's own layer statistics (strata_llm.layer_importance: the blocks whose
ends are closest in angle), the self-merges repeat a block of middle layers; every spec runs over one mapping
of the file (strata_llm.profile, as `strata profile`). Needs matplotlib for the plot (pip install matplotlib).

    python spec_sweep.py SmolLM2-135M-Instruct.Q4_1.gguf ~/.cache/strata/text/austen-emma.txt -o sweep.png
"""

import argparse

import strata_llm


def self_merges(n_layers: int, sizes: list[int]) -> list[str]:
    """Repeat a block of k layers from the middle right after itself: 0:m+k, then m: (40 steps for k=10 of
    30)."""
    middle = n_layers // 3
    return [f"0:{middle + k},{middle}:" for k in sizes if middle + k <= n_layers]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="a GGUF model")
    ap.add_argument(
        "text", nargs="?", help="text to measure over (default: a built-in paragraph; use a long one)"
    )
    ap.add_argument("--n-ctx", type=int, default=256, help="tokens per perplexity chunk")
    ap.add_argument("--chunks", type=int, default=0, help="at most this many chunks (0: all)")
    ap.add_argument("--max-block", type=int, default=4, help="largest pruned block")
    ap.add_argument("-o", "--output", default="spec_sweep.png", help="the plot")
    ap.add_argument("--no-plot", action="store_true", help="print the table only")
    args = ap.parse_args()

    text = open(args.text, encoding="utf-8").read() if args.text else strata_llm.sample_text() * 4
    model = strata_llm.Model(args.model, n_ctx=args.n_ctx)
    n_layers = model.n_layers
    importance = strata_llm.layer_importance(
        model,
        text,
        max_block=min(args.max_block, n_layers - 1),
        n_ctx=args.n_ctx,
        chunks=args.chunks,
        as_dataframe=False,
    )
    suggestions = strata_llm.layer_suggestions(importance, as_dataframe=False)
    pruned = [s["spec"] for s in suggestions if s["kind"] == "prune-angular"]
    merged = self_merges(n_layers, sorted({max(1, n_layers // 6), max(1, n_layers // 3)}))
    specs = list(dict.fromkeys(pruned + merged))
    rows = strata_llm.profile(model, specs, text, n_ctx=args.n_ctx, chunks=args.chunks, as_dataframe=False)

    print(f"{'spec':<24} {'steps':>5} {'virtual params':>15} {'unique MiB':>10} {'PPL':>9} {'KL':>8}")
    for r in rows:
        mib = r["unique_weight_bytes"] / 2**20
        print(
            f"{r['spec']:<24} {r['steps']:>5} {r['virtual_params']:>15,.0f} {mib:>10.1f} "
            f"{r['ppl']:>9.3f} {r['kl']:>8.4f}"
        )
    if args.no_plot:
        return

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for r in rows:
        kind = "base" if r["spec"] == "base" else "self-merge" if r["spec"] in merged else "pruned"
        colour = {"base": "black", "pruned": "tab:red", "self-merge": "tab:blue"}[kind]
        ax.errorbar(r["virtual_params"] / 1e6, r["ppl"], yerr=r["ppl_err"], fmt="o", color=colour)
        ax.annotate(
            r["spec"],
            (r["virtual_params"] / 1e6, r["ppl"]),
            textcoords="offset points",
            xytext=(5, 5),
            fontsize=8,
        )
    ax.set_xlabel("parameters the plan runs (millions)")
    ax.set_ylabel("perplexity")
    ax.set_yscale("log")  # a pruned spec can be orders of magnitude worse
    ax.set_title(f"{model.info['name'] or args.model}: perplexity vs size (n_ctx {args.n_ctx})")
    for kind, colour in (("base", "black"), ("pruned", "tab:red"), ("self-merge", "tab:blue")):
        ax.plot([], [], "o", color=colour, label=kind)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    print(f"plot: {args.output}")


if __name__ == "__main__":
    main()
