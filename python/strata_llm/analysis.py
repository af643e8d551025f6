"""The layer tools: profile layer specs (quality, size, speed), measure how much each layer matters, and look
inside a plan with the logit lens.

Each returns a table: a list of dicts (one per row), or a pandas DataFrame of the same rows when pandas is
installed (``as_dataframe=None``, the default); ``as_dataframe=False`` always gives the dicts, ``True`` always
the DataFrame (ImportError without pandas).
"""

from __future__ import annotations

import json
import math
import os
from typing import TYPE_CHECKING, Any, Callable, Union
from collections.abc import Sequence

from . import _strata
from .model import Model

if TYPE_CHECKING:
    import pandas

    Table = Union[list[dict[str, Any]], pandas.DataFrame]
else:
    Table = Any

ModelLike = Union[Model, str, os.PathLike]


def _table(rows: list[dict[str, Any]], as_dataframe: bool | None) -> Table:
    if as_dataframe is False:
        return rows
    try:
        import pandas
    except ImportError:
        if as_dataframe:
            raise ImportError("as_dataframe=True needs pandas: pip install pandas") from None
        return rows
    return pandas.DataFrame(rows)


def _records(table: Table) -> list[dict[str, Any]]:
    to_dict = getattr(table, "to_dict", None)
    return to_dict("records") if callable(to_dict) else list(table)


def _model(model: ModelLike, n_ctx: int) -> Model:
    # A path opens the file through the process's registry: a Model over it elsewhere shares the mapping.
    return model if isinstance(model, Model) else Model(model, n_ctx=n_ctx)


def profile(
    model: ModelLike,
    specs: Sequence[str],
    text: str,
    *,
    n_ctx: int = 512,
    chunks: int = 0,
    n_gen: int = 32,
    draft_max: int = 0,
    n_threads: int | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    as_dataframe: bool | None = None,
) -> Table:
    """Profiles layer specs of one model over one mapping, as ``strata profile`` does: one row per spec
    ("base", the model's own layers, first; added when absent), with its steps, virtual parameters, unique
    weight bytes, KV bytes, perplexity over ``text`` (llama.cpp's method: chunks of ``n_ctx`` tokens, the
    second half of each scored), ΔPPL, KL divergence and top-1 agreement against the base, prompt and
    generation speed and peak RSS. ``draft_max`` > 0 also times each spec as a self-speculative draft of the
    base. ``progress(done, total, what)`` is called as it goes. Ctrl-C stops it between chunks
    (KeyboardInterrupt). A Model's own layer spec plays no part (the specs are the ones given); its threads
    and device are used unless ``n_threads`` says otherwise."""
    m = _model(model, n_ctx)
    rows = _strata.profile(
        m._handle,
        list(specs),
        text,
        n_ctx,
        chunks,
        n_gen,
        draft_max,
        m.n_threads if n_threads is None else n_threads,
        progress,
    )
    return _table(rows, as_dataframe)


def layer_importance(
    model: ModelLike,
    text: str,
    *,
    max_block: int | None = None,
    n_ctx: int = 512,
    chunks: int = 0,
    n_threads: int | None = None,
    as_dataframe: bool | None = None,
) -> Table:
    """How much each file layer changes the residual stream over ``text``, as ``strata layers`` measures it:
    one row per layer with ``block_influence`` (ShortGPT: 1 - mean cos(layer input, output)), ``bi_rank`` (1 =
    the least influential) and ``angular_n`` for n = 1..max_block (Gromov et al.: the angular distance / pi
    between the states entering layer l and layer l+n; None where l+n is past the last layer). ``max_block``
    defaults to min(4, layers - 1). ``layer_suggestions()`` turns the rows into --layer-spec suggestions. It
    measures the file's own layers: a Model's layer spec plays no part."""
    m = _model(model, n_ctx)
    n_layers = m.n_layers
    k = min(4, n_layers - 1) if max_block is None else max_block
    threads = m.n_threads if n_threads is None else n_threads
    st = _strata.layer_stats(m._handle, text, n_ctx, chunks, k, threads)
    bi: list[float] = st["block_influence"]
    order = sorted(range(n_layers), key=lambda layer: bi[layer])  # stable, as the CLI ranks
    rank = {layer: i + 1 for i, layer in enumerate(order)}
    rows: list[dict[str, Any]] = []
    for layer in range(n_layers):
        row: dict[str, Any] = {"layer": layer, "block_influence": bi[layer], "bi_rank": rank[layer]}
        for n in range(1, k + 1):
            ang = st["angular"][n - 1]
            row[f"angular_{n}"] = ang[layer] if layer < len(ang) else None
        row["tokens"] = st["tokens"]
        rows.append(row)
    return _table(rows, as_dataframe)


def layer_suggestions(importance: Table, *, as_dataframe: bool | None = None) -> Table:
    """--layer-spec suggestions from ``layer_importance()``'s rows (as ``strata layers`` prints them): for
    each block size n, drop the n layers whose ends are closest in angle ("prune-angular") and the n lowest-BI
    layers ("prune-bi"), and the best self-merge seams ("merge"); each row has kind, n, start, score and
    spec."""
    rows = _records(importance)
    if not rows:
        raise ValueError("layer_suggestions: no rows (pass what layer_importance() returned)")
    k = sum(1 for key in rows[0] if key.startswith("angular_"))
    bi = [float(r["block_influence"]) for r in rows]
    angular = []
    for n in range(1, k + 1):
        values = [r[f"angular_{n}"] for r in rows]
        angular.append(
            [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
        )
    return _table(_strata.layer_suggestions(len(rows), k, bi, angular), as_dataframe)


def lens_report(
    model: Model,
    prompt: str,
    *,
    top_k: int = 5,
    positions: str = "last",
    compare: str | None = None,
    n_threads: int | None = None,
) -> dict[str, Any]:
    """The logit lens of ``model``'s plan over ``prompt``, as ``strata lens -o json`` reports it (the README's
    schema): after every plan step, the final norm and output head applied to the residual stream, per
    reported position (``positions``: "last" or "all") the top-k tokens, the rank and probability of the token
    the full plan predicts, the entropy and KL(final || lens) in nats. ``compare`` ("base" or another layer
    spec of the same model) adds that plan's report under "reference" and each cell's ``kl_reference`` (KL
    from the compared plan's final output)."""
    threads = model.n_threads if n_threads is None else n_threads
    return json.loads(_strata.lens(model._handle, prompt, top_k, positions, compare or "", threads))


def lens(
    model: Model,
    prompt: str,
    *,
    top_k: int = 5,
    positions: str = "last",
    compare: str | None = None,
    n_threads: int | None = None,
    as_dataframe: bool | None = None,
) -> Table:
    """``lens_report()`` as a table: one row per (plan step, position) with step, layer, position, the lens's
    top-1 token (``top1``, ``top1_prob``), the full plan's predicted token (``target``, ``target_rank``,
    ``target_prob``), ``entropy``, ``kl`` and, with ``compare``, ``kl_reference``; ``top`` holds the top-k as
    (text, prob) pairs. A repeated layer gives one row per step that runs it."""
    report = lens_report(model, prompt, top_k=top_k, positions=positions, compare=compare, n_threads=n_threads)
    rows: list[dict[str, Any]] = []
    for step in report["steps"]:
        for cell in step["positions"]:
            row: dict[str, Any] = {
                "step": step["step"],
                "layer": step["layer"],
                "position": cell["position"],
                "top1": cell["top"][0]["text"],
                "top1_prob": cell["top"][0]["prob"],
                "target": cell["target"]["text"],
                "target_rank": cell["target"]["rank"],
                "target_prob": cell["target"]["prob"],
                "entropy": cell["entropy"],
                "kl": cell["kl"],
            }
            if "kl_reference" in cell:
                row["kl_reference"] = cell["kl_reference"]
            row["top"] = [(t["text"], t["prob"]) for t in cell["top"]]
            rows.append(row)
    return _table(rows, as_dataframe)
