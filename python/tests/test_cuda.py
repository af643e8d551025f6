"""device="cuda": the same text as `strata run --device cuda`. Runs only where the package was built with CUDA
(STRATA_CUDA=AUTO pip install .) and a GPU is there; elsewhere it is skipped with the reason."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run

import strata_llm

gpu = strata_llm.system_info()
pytestmark = pytest.mark.skipif(
    not gpu["gpu"], reason=f"no GPU for strata_llm: {gpu['gpu_unavailable_because']}"
)


@pytest.mark.parametrize("spec", ["", "0:20,10:30"])
def test_greedy_text_on_the_gpu_equals_the_cli(cli, smollm2, spec):
    prompt = "The three primary colours are"
    spec_args = ["--layer-spec", spec] if spec else []
    out = run(
        cli,
        "run",
        "-m",
        smollm2,
        *spec_args,
        "--device",
        "cuda",
        "-p",
        prompt,
        "-n",
        "32",
        "--temp",
        "0",
        "--no-display-prompt",
    ).stdout.decode()
    m = strata_llm.Model(smollm2, layer_spec=spec or None, device="cuda")
    assert m.generate(prompt, max_tokens=32, temperature=0) + "\n" == out


def test_logits_on_the_gpu(smollm2):
    m = strata_llm.Model(smollm2, device="cuda")
    logits = m.eval(m.tokenize("Hello"))
    assert logits.shape == (m.n_vocab,) and np.isfinite(logits).all() and not logits.flags.writeable
    cpu = strata_llm.Model(smollm2).eval(m.tokenize("Hello"))
    assert int(np.argmax(logits)) == int(np.argmax(cpu))
