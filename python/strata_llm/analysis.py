"""The layer tools: profile layer specs (quality, size, speed) and measure how much each layer matters.

Each returns a table: a list of dicts (one per row), or a pandas DataFrame of the same rows when pandas is
installed (``as_dataframe=None``, the default); ``as_dataframe=False`` always gives the dicts, ``True`` always
the DataFrame (ImportError without pandas).
"""

from __future__ import annotations

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
