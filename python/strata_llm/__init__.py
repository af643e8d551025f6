"""strata_llm: strata's inference engine from Python, and its layer tools.

    >>> import strata_llm
    >>> m = strata_llm.Model("SmolLM2-135M-Instruct.Q4_1.gguf", layer_spec="0:20,10:30")  # a self-merge
    >>> m.generate("Once upon a time", max_tokens=32, temperature=0)
    >>> chat = strata_llm.Chat(m, system="You are terse.")
    >>> chat.send("What is a layer spec?")

Model (tokenize, generate, eval and logits, plan), Chat (send, continue_, ai_prefix, reversed_role, restart,
history), profile / layer_importance / layer_suggestions / lens (tables of rows), programs (the multi-model programs'
text logic). Every Model and Chat over one file shares one mapping of it (mapped_files() lists them).
"""

try:
    from . import _strata
except ImportError as e:  # the source folder, not an installed package
    raise ImportError(
        f"strata_llm's extension module is missing ({e}): install the package with `pip install .` from the "
        "strata checkout (the source folder python/strata_llm is not importable by itself)"
    ) from e

from . import programs
from .analysis import layer_importance, layer_suggestions, lens, lens_report, profile
from .chat import Chat
from .errors import ContextOverflowError, LayerSpecError, ModelLoadError, StrataError
from .model import Model, Plan

__version__: str = _strata.__version__


def chat_templates() -> list[str]:
    """The chat template names Chat(template=...) accepts."""
    return _strata.chat_templates()


def mapped_files() -> list[dict]:
    """The model files this process has mapped and someone still uses: path, mapped_bytes (counted once,
    however many Models and Chats use the file), users, opens (how many Models asked for it)."""
    return _strata.mapped_files()


def system_info() -> dict:
    """The CPU kernel set in use, resident memory (current and peak) and the GPU, if this build has CUDA."""
    return _strata.system_info()


def sample_text() -> str:
    """A built-in paragraph of plain English prose (a few hundred tokens): enough for a quick profile or
    layer_importance run with a small n_ctx. Real measurements want a longer text."""
    return _strata.builtin_calibration_text()


__all__ = [
    "Model",
    "Plan",
    "Chat",
    "profile",
    "layer_importance",
    "layer_suggestions",
    "lens",
    "lens_report",
    "programs",
    "chat_templates",
    "mapped_files",
    "system_info",
    "sample_text",
    "StrataError",
    "ModelLoadError",
    "LayerSpecError",
    "ContextOverflowError",
]
