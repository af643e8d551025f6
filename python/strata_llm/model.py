"""Model: a GGUF (or llama2.c) model under a layer spec, with tokenize, generate and eval/logits."""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Literal, overload
from collections.abc import Iterator, Sequence

from . import _stream, _strata

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


def _sampler_defaults() -> SimpleNamespace:
    d = _strata.SamplerParams()  # plain values only: no engine object outlives the interpreter's shutdown
    names = ("temperature", "top_k", "top_p", "min_p", "repeat_penalty", "repeat_last_n")
    values = {name: getattr(d, name) for name in names}
    return SimpleNamespace(**{k: float(f"{v:.7g}") if isinstance(v, float) else v for k, v in values.items()})


# The engine's sampling defaults, the CLI's too: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, no
# repetition penalty; and seed -1, a random one (llama.cpp's --seed -1), which the statistics report so a run
# can be repeated.
_D = _sampler_defaults()
RANDOM_SEED = -1


def sampler_params(
    temperature: float,
    top_k: int,
    top_p: float,
    min_p: float,
    repeat_penalty: float,
    repeat_last_n: int,
    seed: int,
) -> _strata.SamplerParams:
    """The engine's sampler settings; a value outside its range (core/run/settings: the rules every front end
    shares) is a ValueError naming the argument."""
    return _strata.SamplerParams(
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        min_p=min_p,
        repeat_penalty=repeat_penalty,
        repeat_last_n=repeat_last_n,
        seed=seed,
    )


@dataclass(frozen=True)
class Plan:
    """What a layer spec makes of a model: the steps the forward pass runs and what they cost.

    A step is one transformer layer run with its own KV-cache slot; steps that repeat a file layer share its
    weights (no copies), so a self-merge costs only its extra KV cache."""

    spec: str  # the layer spec ("" for the model's own layers)
    layers: list[int]  # the file layer each step runs
    n_steps: int
    n_layers: int  # file layers
    repeated: list[int]  # file layers run by more than one step
    dropped: list[int]  # file layers no step runs
    kinds: list[str]  # per step: "global" or "sliding_window" (the file layer's kind, wherever it runs)
    virtual_params: int  # parameters the plan executes (a repeated layer counts each time)
    unique_params: int  # parameters memory holds (each file layer the plan uses, once)
    unique_weight_bytes: int
    kv_bytes: int  # the KV cache at n_ctx
    kv_bytes_per_token: int
    n_ctx: int

    def __str__(self) -> str:
        def runs(layers: list[int]) -> str:
            return _strata.compact_layer_list(layers) if layers else "none"

        return (
            f"plan:           {self.spec or '(all layers)'}\n"
            f"layers:         {runs(self.layers)}\n"
            f"steps:          {self.n_steps} (file layers: {self.n_layers})\n"
            f"repeated:       {runs(self.repeated)}\n"
            f"dropped:        {runs(self.dropped)}\n"
            f"virtual params: {self.virtual_params:,}\n"
            f"unique params:  {self.unique_params:,} ({self.unique_weight_bytes / 2**20:.1f} MiB)\n"
            f"KV cache:       {self.kv_bytes_per_token:,} bytes per token, "
            f"{self.kv_bytes / 2**20:.1f} MiB at context {self.n_ctx}"
        )


class Model:
    """A model file under a layer spec.

    ``Model(path)`` maps the file once per process: every Model (and Chat) over the same file shares that one
    mapping and its weights, whatever its layer spec, and has its own plan and KV cache.

    ``layer_spec`` lists the file layers to run, Python-slice style (``"0:20,10:30"`` self-merges SmolLM2's 30
    layers into 40 steps; ``"0:10,10:20:2,20:"`` prunes); ``None`` runs the model's own layers. ``n_ctx``:
    context tokens (None: the model's training context, at most 4096; 0: the whole training context, as
    llama.cpp's -c 0). ``n_threads``: None or 0 for all hardware threads (more are not used). ``device``:
    ``"cpu"`` or ``"cuda"`` (a build with CUDA and a GPU; ``n_gpu_layers`` puts only the first N steps there).
    ``tokenizer``: a llama2.c checkpoint's tokenizer.bin.

    Raises ModelLoadError (a ValueError) when the file cannot be loaded, LayerSpecError (a ValueError) for a
    bad spec. A Model is not meant for use from several threads at once: calls wait for one another, but the
    token positions they see would interleave.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        layer_spec: str | None = None,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        device: str = "cpu",
        *,
        tokenizer: str | os.PathLike[str] | None = None,
        n_batch: int = 256,
        n_gpu_layers: int | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.layer_spec = layer_spec or ""
        self.device = "cuda" if n_gpu_layers else device
        self._h: _strata.Model | None = _strata.Model(
            self.path,
            os.fspath(tokenizer) if tokenizer is not None else "",
            self.layer_spec,
            n_ctx,
            n_threads,
            n_batch,
            device,
            -1 if n_gpu_layers is None else n_gpu_layers,
        )
        # The last generate()'s statistics: prompt and generated token counts, speeds, finish_reason ("eos",
        # "length", "context" (full), "stop" (a stop string), "interrupted").
        self.last_generation: dict[str, Any] | None = None

    @property
    def _handle(self) -> _strata.Model:
        if self._h is None:
            raise ValueError("the model is closed")
        return self._h

    def close(self) -> None:
        """Releases the engine's objects (the KV cache; the file's mapping once nothing else uses it). Arrays
        from ``logits`` keep what they view alive."""
        self._h = None

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        spec = f", layer_spec={self.layer_spec!r}" if self.layer_spec else ""
        state = "closed" if self._h is None else f"n_ctx={self._h.n_ctx}"
        return f"Model({self.path!r}{spec}, {state})"

    # ---- what the model is -----------------------------------------------------------------------------
    @property
    def info(self) -> dict[str, Any]:
        """Architecture, dimensions, parameter count, file size and the recognised chat template ("" if
        none)."""
        return self._handle.info

    @property
    def plan(self) -> Plan:
        """The steps this model's layer spec runs and what they cost (see Plan)."""
        return Plan(**self._handle.plan)

    @property
    def n_ctx(self) -> int:
        return self._handle.n_ctx

    @property
    def n_threads(self) -> int:
        return self._handle.n_threads

    @property
    def n_vocab(self) -> int:
        return self._handle.n_vocab

    @property
    def n_layers(self) -> int:
        """Transformer layers in the file (the plan may run more or fewer steps)."""
        return int(self.info["n_layers"])

    @property
    def token_bos(self) -> int:
        return self._handle.token_bos

    @property
    def token_eos(self) -> int:
        return self._handle.token_eos

    def is_eog(self, token: int) -> bool:
        """Whether the token ends a generation (EOS, end of turn, ...)."""
        return self._handle.is_eog(token)

    # ---- text and tokens ---------------------------------------------------------------------------------
    def tokenize(self, text: str | bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        """Token ids of ``text``, as llama.cpp tokenizes it. ``add_bos``: add BOS/EOS where the vocabulary
        says to; ``special``: text like ``<|im_end|>`` becomes that control token."""
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        return self._handle.tokenize(data, add_bos, special)

    def detokenize(self, tokens: Sequence[int], special: bool = False) -> str:
        """The text of ``tokens`` (llama.cpp's detokenize); ``special`` renders control tokens as their text.
        Bytes that are not valid UTF-8 become U+FFFD."""
        return self._handle.detokenize(_ids(tokens), special).decode("utf-8", errors="replace")

    def token_to_piece(self, token: int, special: bool = True) -> bytes:
        """The bytes one token stands for (may be part of a UTF-8 character)."""
        return self._handle.token_to_piece(token, special)

    # ---- the forward pass --------------------------------------------------------------------------------
    def eval(self, tokens: Sequence[int]) -> np.ndarray[Any, np.dtype[np.float32]]:
        """Runs the forward pass over ``tokens`` after those already in the cache (``self.tokens``) and
        returns the last token's logits (see ``logits``). Ctrl-C stops between prompt batches
        (KeyboardInterrupt; the cache keeps what was evaluated). Raises ContextOverflowError when they do not
        fit ``n_ctx``."""
        self._handle.eval(_ids(tokens))
        logits = self._handle.logits
        assert logits is not None
        return logits

    @property
    def logits(self) -> npt.NDArray[np.float32] | None:
        """The next-token logits after the last ``eval()``: a read-only float32 array of shape (n_vocab,) that
        views the engine's own buffer, without a copy.

        It stays valid memory for as long as the array lives (it keeps the engine's objects alive, even past
        ``close()``), but its *contents* are those of the latest forward pass: the next ``eval()`` or
        ``generate()`` on this model overwrites them. Take ``.copy()`` to keep them. None before any
        ``eval()`` and after ``generate()`` or ``reset()``."""
        return self._handle.logits

    @property
    def tokens(self) -> list[int]:
        """The tokens whose keys and values the KV cache holds (positions 0..n_tokens-1)."""
        return self._handle.tokens

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    def reset(self) -> None:
        """Forgets the cache's tokens: the next ``eval()`` starts at position 0."""
        self._handle.reset()

    # ---- generation ----------------------------------------------------------------------------------------
    @overload
    def generate(
        self,
        prompt: str | Sequence[int],
        max_tokens: int | None = ...,
        temperature: float = ...,
        top_k: int = ...,
        top_p: float = ...,
        seed: int = ...,
        stop: str | Sequence[str] | None = ...,
        stream: Literal[False] = ...,
        *,
        min_p: float = ...,
        repeat_penalty: float = ...,
        repeat_last_n: int = ...,
        ignore_eos: bool = ...,
    ) -> str: ...

    @overload
    def generate(
        self,
        prompt: str | Sequence[int],
        max_tokens: int | None = ...,
        temperature: float = ...,
        top_k: int = ...,
        top_p: float = ...,
        seed: int = ...,
        stop: str | Sequence[str] | None = ...,
        *,
        stream: Literal[True],
        min_p: float = ...,
        repeat_penalty: float = ...,
        repeat_last_n: int = ...,
        ignore_eos: bool = ...,
    ) -> Iterator[str]: ...

    def generate(
        self,
        prompt: str | Sequence[int],
        max_tokens: int | None = 128,
        temperature: float = _D.temperature,
        top_k: int = _D.top_k,
        top_p: float = _D.top_p,
        seed: int = RANDOM_SEED,
        stop: str | Sequence[str] | None = None,
        stream: bool = False,
        *,
        min_p: float = _D.min_p,
        repeat_penalty: float = _D.repeat_penalty,
        repeat_last_n: int = _D.repeat_last_n,
        ignore_eos: bool = False,
    ) -> str | Iterator[str]:
        """Continues ``prompt`` (text, tokenized as ``strata run -p`` does, or token ids) and returns the new
        text; with ``stream=True``, an iterator of its pieces as they come (each a whole UTF-8 character or
        more).

        ``max_tokens``: at most this many tokens (None or -1: until end of generation or a full context).
        ``temperature`` 0 is greedy; ``top_k`` 0 and ``top_p`` 1 are off; ``seed`` -1 draws a random one
        (``last_generation["seed"]`` says which). The same prompt, settings and seed give the same text as
        ``strata run`` (``-n``, ``--temp``, ``--top-k``, ``--top-p``, ``--min-p``, ``-s``). Values outside the
        engine's ranges (the CLI's) are ValueErrors. ``stop``: the text ends before the first of these
        strings. ``ignore_eos``: generate past end-of-text.

        The KV cache keeps the prompt and the reply, and the next call re-evaluates only what follows the
        longest common prefix (the numbers are the same as a fresh run's). The GIL is released while the
        engine runs; Ctrl-C raises KeyboardInterrupt once it has stopped (within one token or prompt
        batch)."""
        h = self._handle
        ids = h.prompt_tokens(prompt) if isinstance(prompt, str) else _ids(prompt)
        sampler = sampler_params(temperature, top_k, top_p, min_p, repeat_penalty, repeat_last_n, seed)
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        stopped = False

        def start(on_piece: Any) -> dict[str, Any]:
            return h.generate(ids, sampler, max_tokens, ignore_eos, on_piece)

        def on_stop() -> None:
            nonlocal stopped
            stopped = True

        def done(stats: dict[str, Any]) -> None:
            if stopped:
                stats["finish_reason"] = "stop"
            self.last_generation = stats

        pieces = _stream.cut_at_stop(_stream.stream(start, h.abort, done), stops, on_stop)
        if stream:
            return pieces
        return "".join(pieces)


def _ids(tokens: Sequence[int]) -> list[int]:
    if isinstance(tokens, (str, bytes)):
        raise TypeError("expected token ids (a sequence of int), not text: tokenize() it first")
    return [int(t) for t in tokens]
