#!/usr/bin/env python3
"""A two-model crosstalk through libstrata from Python's ctypes (no packages), and the logit lens through its
row callback: proof that the C API is usable from another language.
Usage: c_api_example.py path/to/libstrata.so MODEL_A.gguf [MODEL_B.gguf] [TURNS]
Exit 77 (skipped) when a model file is missing."""
import ctypes
import os
import sys

PIECE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t)
END = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p)


class LensRow(ctypes.Structure):
    """strata_lens_row (core/api/strata.h)."""
    _fields_ = [(n, ctypes.c_int) for n in ("step", "layer", "position", "input_token", "target", "target_rank")]
    _fields_ += [
        ("target_prob", ctypes.c_float), ("entropy", ctypes.c_double), ("kl", ctypes.c_double),
        ("kl_reference", ctypes.c_double), ("top_k", ctypes.c_int), ("top_ids", ctypes.POINTER(ctypes.c_int)),
        ("top_probs", ctypes.POINTER(ctypes.c_float)), ("dim", ctypes.c_int),
        ("residual", ctypes.POINTER(ctypes.c_float)), ("n_vocab", ctypes.c_int),
        ("logits", ctypes.POINTER(ctypes.c_float))]


LENS = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(LensRow))


def load(path):
    lib = ctypes.CDLL(path)
    lib.strata_last_error.restype = ctypes.c_char_p
    lib.strata_model_open.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.strata_model_close.argtypes = [ctypes.c_void_p]
    lib.strata_model_info_json.argtypes = [ctypes.c_void_p]
    lib.strata_model_info_json.restype = ctypes.c_char_p
    lib.strata_session_new.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_char_p),
                                       ctypes.POINTER(ctypes.c_void_p)]
    lib.strata_session_free.argtypes = [ctypes.c_void_p]
    lib.strata_session_send.argtypes = [ctypes.c_void_p, ctypes.c_char_p, PIECE, END, ctypes.c_void_p]
    lib.strata_session_add_message.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
    lib.strata_session_stats_json.argtypes = [ctypes.c_void_p]
    lib.strata_session_stats_json.restype = ctypes.c_char_p
    lib.strata_lens.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                                ctypes.POINTER(ctypes.c_char_p), LENS, ctypes.c_void_p,
                                ctypes.POINTER(ctypes.c_char_p)]
    return lib


def lens(lib, model, prompt, options):
    """The logit lens: (step, layer, top token id, KL to the final output) per step, at the last position."""
    rows = []
    on_row = LENS(lambda _u, r: rows.append((r[0].step, r[0].layer, r[0].top_ids[0], r[0].kl)))
    argv = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
    check(lib, lib.strata_lens(model, prompt.encode(), len(options), argv, on_row, None, None))
    return rows


class Session:
    def __init__(self, lib, model, options):
        self.lib = lib
        argv = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
        self.handle = ctypes.c_void_p()
        check(lib, lib.strata_session_new(model, len(options), argv, ctypes.byref(self.handle)))

    def chat(self, text):
        pieces = []
        on_piece = PIECE(lambda _u, p, n: (pieces.append(p[:n].decode('utf-8', 'replace')),
                                           print(pieces[-1], end='', flush=True)))
        status = self.lib.strata_session_send(self.handle, text.encode(), on_piece, END(lambda *a: None), None)
        check(self.lib, status)
        print()
        return ''.join(pieces)

    def close(self):
        self.lib.strata_session_free(self.handle)


def check(lib, status):
    if status < 0:
        raise RuntimeError(f'strata error {status}: {lib.strata_last_error().decode()}')


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    lib = load(sys.argv[1])
    path_a = sys.argv[2]
    path_b = sys.argv[3] if len(sys.argv) > 3 else path_a
    turns = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    if not (os.path.exists(path_a) and os.path.exists(path_b)):
        print('skipped: missing model file')
        return 77
    models = []
    for p in (path_a, path_b):
        h = ctypes.c_void_p()
        check(lib, lib.strata_model_open(p.encode(), None, ctypes.byref(h)))
        models.append(h)
    # An error comes back as a code and a message.
    bad = ctypes.c_void_p()
    assert lib.strata_model_open(b'/nonexistent.gguf', None, ctypes.byref(bad)) == -2
    assert b'/nonexistent.gguf' in lib.strata_last_error()
    # The logit lens over a self-merge: one row per step, the repeated layers' second passes included.
    rows = lens(lib, models[0], 'The capital of France is', ['--layer-spec', '0:24,20:30', '-t', '2'])
    assert [r[1] for r in rows] == list(range(24)) + list(range(20, 30)), rows
    assert rows[-1][3] == 0.0, rows[-1]  # the last step is the output itself
    opts = ['--temp', '0', '--max-new-tokens', '8', '-c', '256', '-t', '2']
    a = Session(lib, models[0], opts)
    b = Session(lib, models[1], opts + ['--layer-spec', '0:24'])
    text = 'Hello! What is your favourite colour?'
    lib.strata_session_add_message(a.handle, b'assistant', text.encode())  # A said the opening line
    print('A > ' + text)
    speakers = []
    for turn in range(turns):
        name, s = ('B', b) if turn % 2 == 0 else ('A', a)
        print(f'{name} > ', end='', flush=True)
        text = s.chat(text)
        speakers.append(name)
    assert speakers == ['B', 'A', 'B', 'A'][:turns], speakers
    stats_b = lib.strata_session_stats_json(b.handle).decode()
    assert '"steps":24' in stats_b, stats_b
    a.close()
    b.close()
    for h in models:
        lib.strata_model_close(h)
    print('c_api_example: ok')
    return 0


if __name__ == '__main__':
    sys.exit(main())
