"""The exceptions strata_llm raises. Each carries the engine's own message.

Every engine error is a :class:`StrataError`. The ones a caller can fix are also :class:`ValueError` (as
llama-cpp-python raises for a bad path or a prompt longer than the context), so ``except ValueError`` catches
them too. Other bad arguments (an unknown role, a negative ``n_ctx``, a token id outside the vocabulary) are
plain :class:`ValueError`. Ctrl-C during a generation is :class:`KeyboardInterrupt`, raised once the engine
has stopped.
"""


class StrataError(RuntimeError):
    """An error from the engine (the message says what went wrong and what to do)."""


class ModelLoadError(StrataError, ValueError):
    """The model file cannot be loaded: missing, unreadable, truncated, not a model, an unsupported
    architecture or tensor type."""


class LayerSpecError(StrataError, ValueError):
    """A layer spec the model cannot run: an item outside the model, a zero step, an empty or unparsable
    item."""


class ContextOverflowError(StrataError, ValueError):
    """The tokens do not fit the context (raise ``n_ctx``, or ``reset()`` the model); in a chat, a message too
    long for the context even without earlier turns, or a full context under ``overflow="error"``."""


__all__ = ["StrataError", "ModelLoadError", "LayerSpecError", "ContextOverflowError"]
