#!/usr/bin/env python3
"""`strata lens` against an independent numpy model of the same GGUF (llama architecture, F32 tensors, e.g.
stories260K): the whole forward pass written out here in float64 (embedding, RMSNorm, RoPE on (2i, 2i+1)
pairs as llama GGUFs use it, grouped-query causal attention, SwiGLU), over the plan's steps as `strata lens`
reports them, with the lens (final RMSNorm and output head) after every step. Every (step, position) must
agree: top-k tokens and probabilities, the target's rank and probability, entropy and KL(final || lens).

Usage: lens_numpy.py STRATA_BINARY MODEL.gguf [LAYER_SPEC]
Exit 77 (skipped) when numpy or gguf (PyPI) is missing or the model file is absent."""
import json
import os
import subprocess
import sys

try:
    import numpy as np
    from gguf import GGUFReader
except ImportError as e:  # the venv .ci/setup makes holds both
    print(f"skipped: {e} (install numpy and gguf into the venv: bash .ci/setup)")
    sys.exit(77)

PROMPT = "Once upon a time, there was a little girl named Lily. She loved to play"
TOP_K = 5


def load(path):
    r = GGUFReader(path)
    arch = bytes(r.fields["general.architecture"].parts[-1]).decode()
    if arch != "llama":
        raise SystemExit(f"{path}: this reference models the llama architecture, not {arch}")

    def meta(key, default=None):
        f = r.fields.get(f"llama.{key}")
        return default if f is None else f.parts[-1][0].item()

    tensors = {}
    for t in r.tensors:
        if t.tensor_type.name != "F32":
            raise SystemExit(f"{t.name} is {t.tensor_type.name}: this reference reads F32 tensors only")
        # GGUF shapes list the row length first; numpy's array is (rows, row length), as the engine's views.
        tensors[t.name] = np.asarray(t.data, dtype=np.float64).reshape([int(d) for d in reversed(t.shape)])
    cfg = {
        "n_layers": meta("block_count"), "n_heads": meta("attention.head_count"),
        "n_kv_heads": meta("attention.head_count_kv"), "eps": meta("attention.layer_norm_rms_epsilon"),
        "rope_base": meta("rope.freq_base", 10000.0), "rope_dim": meta("rope.dimension_count"),
    }
    return cfg, tensors


def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, n_heads, head_dim, rope_dim, base):
    """x (T, n_heads*head_dim) rotated at positions 0..T-1: pairs (2i, 2i+1) of each head's first rope_dim."""
    T = x.shape[0]
    x = x.reshape(T, n_heads, head_dim).copy()
    i = np.arange(rope_dim // 2)
    angle = np.arange(T)[:, None] * base ** (-2.0 * i / rope_dim)[None, :]  # (T, rope_dim/2)
    cos, sin = np.cos(angle)[:, None, :], np.sin(angle)[:, None, :]
    a, b = x[:, :, 0:rope_dim:2].copy(), x[:, :, 1:rope_dim:2].copy()
    x[:, :, 0:rope_dim:2] = a * cos - b * sin
    x[:, :, 1:rope_dim:2] = a * sin + b * cos
    return x.reshape(T, n_heads * head_dim)


def layer(x, W, l, cfg):
    p = f"blk.{l}."
    T = x.shape[0]
    H, KV = cfg["n_heads"], cfg["n_kv_heads"]
    xb = rmsnorm(x, W[p + "attn_norm.weight"], cfg["eps"])
    q, k, v = xb @ W[p + "attn_q.weight"].T, xb @ W[p + "attn_k.weight"].T, xb @ W[p + "attn_v.weight"].T
    hd = q.shape[1] // H
    q = rope(q, H, hd, cfg["rope_dim"], cfg["rope_base"]).reshape(T, H, hd)
    k = rope(k, KV, hd, cfg["rope_dim"], cfg["rope_base"]).reshape(T, KV, hd)
    v = v.reshape(T, KV, hd)
    out = np.zeros((T, H, hd))
    causal = np.tril(np.ones((T, T), dtype=bool))
    for h in range(H):
        kvh = h // (H // KV)
        s = q[:, h, :] @ k[:, kvh, :].T / np.sqrt(hd)
        s = np.where(causal, s, -np.inf)
        s = np.exp(s - s.max(axis=1, keepdims=True))
        out[:, h, :] = (s / s.sum(axis=1, keepdims=True)) @ v[:, kvh, :]
    x = x + out.reshape(T, H * hd) @ W[p + "attn_output.weight"].T
    xb = rmsnorm(x, W[p + "ffn_norm.weight"], cfg["eps"])
    g, u = xb @ W[p + "ffn_gate.weight"].T, xb @ W[p + "ffn_up.weight"].T
    return x + (g / (1 + np.exp(-g)) * u) @ W[p + "ffn_down.weight"].T


def log_softmax(logits):
    m = logits.max(axis=-1, keepdims=True)
    return logits - m - np.log(np.exp(logits - m).sum(axis=-1, keepdims=True))


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    strata, model = sys.argv[1], sys.argv[2]
    spec = sys.argv[3] if len(sys.argv) > 3 else "0:5,1:3"
    if not os.path.exists(model):
        print(f"skipped: missing model file {model}")
        return 77
    args = ["lens", "-m", model, "-p", PROMPT, "--layer-spec", spec, "--positions", "all",
            "--top-k", str(TOP_K), "-o", "json", "-t", "2"]
    run = subprocess.run([strata] + args, capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"strata lens failed ({run.returncode}): {run.stderr}")
    got = json.loads(run.stdout)
    cfg, W = load(model)
    tokens = [t["id"] for t in got["tokens"]]
    positions = got["positions"]
    layers = [s["layer"] for s in got["steps"]]
    assert got["layer_spec"] == spec and len(layers) == got["n_steps"], got["layer_spec"]
    assert positions == list(range(len(tokens))), positions

    # The reference: every step's residual stream, then the lens over each.
    x = W["token_embd.weight"][tokens]
    lens = []
    for l in layers:
        x = layer(x, W, l, cfg)
        lens.append(log_softmax(rmsnorm(x, W["output_norm.weight"], cfg["eps"]) @ W["output.weight"].T))
    final = lens[-1]
    target = final.argmax(axis=-1)

    worst = {"prob": 0.0, "entropy": 0.0, "kl": 0.0}
    checked = 0
    for s, step in enumerate(got["steps"]):
        assert step["step"] == s
        for cell in step["positions"]:
            t = cell["position"]
            logp = lens[s][t]
            p = np.exp(logp)
            order = np.argsort(-logp, kind="stable")
            ids = [c["id"] for c in cell["top"]]
            probs = [c["prob"] for c in cell["top"]]
            # Top-k as a set of (id, prob): the same ids unless two probabilities are within rounding.
            for k in range(TOP_K):
                if ids[k] != order[k]:
                    gap = abs(p[order[k]] - p[ids[k]])
                    assert gap < 1e-5, f"step {s} position {t}: top-{k + 1} {ids[k]} vs reference {order[k]}"
                worst["prob"] = max(worst["prob"], abs(probs[k] - p[ids[k]]))
            assert cell["target"]["id"] == target[t], f"step {s} position {t}: target"
            worst["prob"] = max(worst["prob"], abs(cell["target"]["prob"] - p[target[t]]))
            rank = 1 + int((logp > logp[target[t]]).sum())
            got_rank = cell["target"]["rank"]
            assert abs(got_rank - rank) <= 1, f"step {s} position {t}: rank {got_rank} vs {rank}"
            entropy = -(p * logp).sum()
            kl = (np.exp(final[t]) * (final[t] - logp)).sum()
            worst["entropy"] = max(worst["entropy"], abs(cell["entropy"] - entropy))
            worst["kl"] = max(worst["kl"], abs(cell["kl"] - kl) / max(1.0, kl))
            checked += 1
    print(f"lens_numpy: {checked} (step, position) cells over spec {spec} ({len(layers)} steps, "
          f"{len(tokens)} tokens); largest differences: prob {worst['prob']:.2e}, "
          f"entropy {worst['entropy']:.2e} nats, KL {worst['kl']:.2e} (relative above 1 nat)")
    tol = {"prob": 2e-5, "entropy": 1e-4, "kl": 1e-4}
    bad = [k for k in tol if worst[k] > tol[k]]
    if bad:
        print(f"lens_numpy: FAILED: {', '.join(bad)} beyond tolerance {tol}")
        return 1
    print("lens_numpy: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
