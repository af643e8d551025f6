#!/usr/bin/env python3
"""Regenerate tests/data/quant_vectors.bin: reference vectors for the quant kernel tests (test_kernels_quant.cpp).

Reference values come from the PyPI `gguf` package (gguf.quants.quantize / dequantize, ggml's own Python twin), or,
for the activation formats gguf does not implement (Q8_1, Q8_K), from the numpy code below written from ggml's
`quantize_row_q8_1_ref` / `quantize_row_q8_K_ref`. Nothing here calls strata.

    python3 tests/data/gen_quant_vectors.py            # writes tests/data/quant_vectors.bin (deterministic)

File format (all little-endian):
    magic   4 bytes  b"STQV"
    version u32      1
    count   u32      number of records
    then `count` records:
        name_len u32, name (ASCII, name_len bytes), data_len u64, data (data_len bytes)

Records (f32 = packed float32 array; "bytes" = raw ggml blocks):
    act.src            f32[N_ACT]   activation source values (N_ACT = 33 * 256)
    act.<A>.bytes      the source quantized to activation format A in {F32, F16, BF16, Q8_0, Q8_1, Q8_K}
    act.<A>.deq        f32[N_ACT]   those bytes dequantized (by gguf, or by d * q for Q8_1 / Q8_K)
    w.<W>.bytes        one weight row of 33 blocks (F32/F16/BF16: 1056 elements) of weight type W
    w.<W>.deq          f32          the row dequantized by gguf
    w.<W>.src          f32          (types gguf can quantize) the values w.<W>.bytes was quantized from
    w.<W>.off          f32          (Q4_1, Q5_1, Q4_K, Q5_K) the offset part of each dequantized value: gguf's
                                    dequantization of the same bytes with every quant bit cleared (m, or -dmin*m)
K-quant rows (Q4_K, Q5_K, Q6_K) are random bytes with a few hand-made blocks, since gguf cannot quantize them.
"""
import struct
import sys
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

SEED = 20240611
N_BLOCKS = 33
N_ACT = N_BLOCKS * 256
N_SMALL = N_BLOCKS * 32  # row length for the 32-element block types and the float types


def np_roundf(v):
    """C roundf: half away from zero."""
    a = np.abs(v)
    fl = np.floor(a)
    return np.sign(v) * (fl + np.floor(2 * (a - fl)))


def make_values(rng, n_units, kind):
    """n_units groups of 32 float32 values with varied magnitudes and a few extreme groups."""
    out = np.empty((n_units, 32), dtype=np.float32)
    for u in range(n_units):
        g = rng.standard_normal(32)
        if u == 1:
            v = np.zeros(32)
        elif u == 4:  # one large outlier among small values
            v = g * 0.01
            v[7] = 50.0
        elif u == 6:  # constant block: Q4_1/Q5_1 get d == 0
            v = np.full(32, 0.75)
        elif u == 9:  # all negative
            v = -np.abs(g) * 2.0
        elif u == 12:  # tiny: f16 scales become subnormal
            v = g * 1e-5
        elif u == 15:  # large
            v = g * 300.0
        elif u == 18:  # exact rounding ties for Q8 (d == 1): roundf (Q8_0/Q8_1) vs round-half-even (Q8_K)
            v = np.arange(32) - 16 + 0.5
            v[0] = 127.0 if kind == "w" else -127.0
        elif u == 21:  # all positive, away from zero
            v = rng.uniform(1.0, 2.0, 32)
        elif kind == "a" and 24 <= u < 32:  # a whole 256-element Q8_K block of zeros in the activations
            v = np.zeros(32)
        else:
            v = g * 10.0 ** rng.uniform(-2.0, 1.0)
        out[u] = v
    return out.reshape(-1)


# ---- activation formats gguf lacks, from ggml's reference code -------------------------------------------------
def quantize_q8_1(x):
    b = x.reshape(-1, 32).astype(np.float32)
    amax = np.abs(b).max(axis=1, keepdims=True)
    d = (amax / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        idv = np.where(d == 0, np.float32(0), np.float32(1) / d).astype(np.float32)
    q = np_roundf((b * idv).astype(np.float32)).astype(np.int8)
    s = (q.astype(np.int32).sum(axis=1).astype(np.float32) * d[:, 0]).astype(np.float32)
    out = np.concatenate([d.astype(np.float16).view(np.uint8), s.astype(np.float16).reshape(-1, 1).view(np.uint8),
                          q.view(np.uint8)], axis=1)
    deq = (d.astype(np.float16).astype(np.float32) * q.astype(np.float32)).astype(np.float32)
    return out.reshape(-1), deq.reshape(-1)


def quantize_q8_K(x):
    b = x.reshape(-1, 256).astype(np.float32)
    nb = b.shape[0]
    out = bytearray()
    deq = np.zeros_like(b)
    for i in range(nb):
        row = b[i]
        j = int(np.argmax(np.abs(row)))  # first element of largest magnitude, as ggml's strict `>`
        mx = row[j]
        if np.abs(mx) == 0:
            out += np.zeros(292, dtype=np.uint8).tobytes()
            continue
        iscale = np.float32(-127.0) / mx
        q = np.minimum(np.rint((iscale * row).astype(np.float32)), 127).astype(np.int8)  # nearest_int: half-even
        bsums = q.astype(np.int32).reshape(16, 16).sum(axis=1).astype(np.int16)
        d = np.float32(1.0) / iscale
        out += np.float32(d).tobytes() + q.tobytes() + bsums.tobytes()
        deq[i] = (d * q.astype(np.float32)).astype(np.float32)
    return np.frombuffer(bytes(out), dtype=np.uint8), deq.reshape(-1)


# ---- random K-quant rows ---------------------------------------------------------------------------------------
def f16_bytes(v):
    return np.array([v], dtype=np.float16).view(np.uint8)


def random_k_blocks(rng, qtype):
    block_size, type_size = quants.GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(N_BLOCKS, type_size), dtype=np.uint8)
    if qtype in (T.Q4_K, T.Q5_K):  # d, dmin first
        for i in range(N_BLOCKS):
            blocks[i, 0:2] = f16_bytes(10.0 ** rng.uniform(-4, -1))
            blocks[i, 2:4] = f16_bytes(10.0 ** rng.uniform(-4, -1))
        blocks[1] = 0                               # all zero
        blocks[4, 0:2] = 0                          # d == 0: offsets only
        blocks[6, 4:] = 0xFF                        # every scale, min and quant at its maximum
        blocks[9, 0:2] = np.array([3, 0], np.uint8)  # subnormal f16 d
    else:  # Q6_K: ql, qh, scales (int8), d last
        for i in range(N_BLOCKS):
            blocks[i, 208:210] = f16_bytes(10.0 ** rng.uniform(-4, -1))
        blocks[1] = 0
        blocks[4, 192:208] = 0x80                   # scales all -128
        blocks[6, 0:192] = 0xFF                     # every quant at +31
        blocks[9, 208:210] = np.array([3, 0], np.uint8)
    return blocks.reshape(-1)


def offset_part(qtype, raw):
    """Dequantize with every quant bit cleared: what remains is the per-value offset (m or -dmin*m)."""
    _, type_size = quants.GGML_QUANT_SIZES[qtype]
    b = raw.reshape(-1, type_size).copy()
    if qtype in (T.Q4_1, T.Q5_1):
        b[:, 4:] = 0
    elif qtype in (T.Q4_K, T.Q5_K):
        b[:, 16:] = 0
    else:
        raise ValueError(qtype)
    return quants.dequantize(b.reshape(-1), qtype).astype(np.float32).reshape(-1)


def main():
    rng = np.random.default_rng(SEED)
    recs = {}

    act = make_values(rng, N_ACT // 32, "a")
    recs["act.src"] = act
    recs["act.F32.bytes"] = act.view(np.uint8)
    recs["act.F32.deq"] = act
    for name, qt in (("F16", T.F16), ("BF16", T.BF16), ("Q8_0", T.Q8_0)):
        raw = np.asarray(quants.quantize(act, qt)).view(np.uint8).reshape(-1)
        recs[f"act.{name}.bytes"] = raw
        recs[f"act.{name}.deq"] = np.asarray(quants.dequantize(raw, qt), dtype=np.float32).reshape(-1)
    recs["act.Q8_1.bytes"], recs["act.Q8_1.deq"] = quantize_q8_1(act)
    recs["act.Q8_K.bytes"], recs["act.Q8_K.deq"] = quantize_q8_K(act)

    wsrc = make_values(rng, N_SMALL // 32, "w")
    for name, qt in (("F32", T.F32), ("F16", T.F16), ("BF16", T.BF16), ("Q4_0", T.Q4_0), ("Q4_1", T.Q4_1),
                     ("Q5_0", T.Q5_0), ("Q5_1", T.Q5_1), ("Q8_0", T.Q8_0)):
        raw = np.asarray(quants.quantize(wsrc, qt)).view(np.uint8).reshape(-1)
        recs[f"w.{name}.src"] = wsrc
        recs[f"w.{name}.bytes"] = raw
        recs[f"w.{name}.deq"] = np.asarray(quants.dequantize(raw, qt), dtype=np.float32).reshape(-1)
        if qt in (T.Q4_1, T.Q5_1):
            recs[f"w.{name}.off"] = offset_part(qt, raw)
    for name, qt in (("Q4_K", T.Q4_K), ("Q5_K", T.Q5_K), ("Q6_K", T.Q6_K)):
        raw = random_k_blocks(rng, qt)
        recs[f"w.{name}.bytes"] = raw
        recs[f"w.{name}.deq"] = np.asarray(quants.dequantize(raw, qt), dtype=np.float32).reshape(-1)
        if qt in (T.Q4_K, T.Q5_K):
            recs[f"w.{name}.off"] = offset_part(qt, raw)

    out = bytearray(b"STQV" + struct.pack("<II", 1, len(recs)))
    for name, arr in recs.items():
        data = np.ascontiguousarray(arr).tobytes()
        if arr.dtype not in (np.uint8, np.float32):
            raise TypeError(name)
        nb = name.encode("ascii")
        out += struct.pack("<I", len(nb)) + nb + struct.pack("<Q", len(data)) + data
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("quant_vectors.bin")
    path.write_bytes(bytes(out))
    print(f"wrote {path} ({len(out)} bytes, {len(recs)} records)")


if __name__ == "__main__":
    main()
