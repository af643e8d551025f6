"""Chat: a conversation with a model through its chat template, as `strata chat` holds one."""

from __future__ import annotations

from typing import Any, Literal, overload
from collections.abc import Iterable, Iterator, Mapping

from . import _stream, _strata
from .model import _D, RANDOM_SEED, Model, sampler_params


class Chat:
    """A conversation over a Model's file and layer spec, with its own KV cache, sampler and history.

    Every turn renders the whole conversation through the model's chat template (recognised from the file;
    ``template`` names one of ``strata_llm.chat_templates()`` instead) and evaluates only what follows the
    prefix the cache already holds. ``system``: the system prompt. ``ai_prefix``: every reply starts with this
    text, which the model continues. ``reversed_role``: the model speaks as the user (your messages become the
    assistant's). ``max_tokens``: per reply (None: until end of turn or a full context). ``overflow``: when
    the conversation no longer fits ``n_ctx``, ``"shift"`` drops the oldest exchanges (the system prompt
    stays), ``"restart"`` drops them all, ``"error"`` raises ContextOverflowError. ``history``: messages to
    start from (dicts with "role" and "content"). Sampling as ``Model.generate``'s (``seed`` -1: a random one,
    which ``stats["seed"]`` reports).

    Ctrl-C during a reply raises KeyboardInterrupt once the engine has stopped; the partial reply stays in the
    history, marked ``"interrupted": True``, and ``continue_()`` goes on from it.
    """

    def __init__(
        self,
        model: Model,
        system: str | None = None,
        template: str | None = None,
        *,
        ai_prefix: str = "",
        reversed_role: bool = False,
        max_tokens: int | None = 512,
        overflow: str = "shift",
        temperature: float = _D.temperature,
        top_k: int = _D.top_k,
        top_p: float = _D.top_p,
        min_p: float = _D.min_p,
        repeat_penalty: float = _D.repeat_penalty,
        repeat_last_n: int = _D.repeat_last_n,
        seed: int = RANDOM_SEED,
        history: Iterable[Mapping[str, str]] | None = None,
    ) -> None:
        self.model = model
        sampler = sampler_params(temperature, top_k, top_p, min_p, repeat_penalty, repeat_last_n, seed)
        self._h = _strata.Chat(
            model._handle,
            system or "",
            template or "",
            ai_prefix,
            reversed_role,
            max_tokens,
            overflow,
            sampler,
        )
        # The last turn's result: the whole message ("text"), what this turn generated, its tokens, whether it
        # was interrupted or stopped by end of turn, prompt/reused/evaluated token counts and speeds.
        self.last_turn: dict[str, Any] | None = None
        for message in history or []:
            self.add_message(message["role"], message["content"])

    def __repr__(self) -> str:
        return f"Chat({self.model!r}, template={self.template!r}, messages={len(self.history)})"

    # ---- turns ---------------------------------------------------------------------------------------------
    @overload
    def send(self, text: str, stream: Literal[False] = ...) -> str: ...
    @overload
    def send(self, text: str, stream: Literal[True]) -> Iterator[str]: ...

    def send(self, text: str, stream: bool = False) -> str | Iterator[str]:
        """Your message, then the model's reply: returns the reply (ai-prefix included), or with
        ``stream=True`` an iterator of its pieces as they come (the ai-prefix first). Raises
        ContextOverflowError when the message cannot fit the context even alone."""
        return self._turn(True, text, stream)

    @overload
    def continue_(self, suffix: str = ..., stream: Literal[False] = ...) -> str: ...
    @overload
    def continue_(self, suffix: str, stream: Literal[True]) -> Iterator[str]: ...

    def continue_(self, suffix: str = "", stream: bool = False) -> str | Iterator[str]:
        """Appends ``suffix`` to the model's last message and lets it write on in that same message. Returns
        (or streams) the suffix and the new text; the whole message is ``history[-1]["content"]``."""
        history = self.history
        if not history or history[-1]["role"] != ("user" if self.reversed_role else "assistant"):
            raise ValueError("nothing to continue: the last message is not the model's")
        return self._turn(False, suffix, stream)

    def _turn(self, fresh: bool, text: str, stream: bool) -> str | Iterator[str]:
        h = self._h

        def start(on_piece: Any) -> dict[str, Any]:
            return h.send(text, on_piece) if fresh else h.continue_(text, on_piece)

        def done(result: dict[str, Any]) -> None:
            self.last_turn = result

        pieces = _stream.stream(start, h.abort, done)
        return pieces if stream else "".join(pieces)

    # ---- the conversation ------------------------------------------------------------------------------
    @property
    def history(self) -> list[dict[str, Any]]:
        """The messages so far, the system prompt first: ``{"role": "system"|"user"|"assistant", "content":
        str}``, with ``"interrupted": True`` on a reply Ctrl-C stopped and ``"truncated": True`` on one that
        hit ``max_tokens`` or a full context."""
        return self._h.history()

    def add_message(self, role: str, content: str) -> None:
        """Adds a message without generating (an opening line, a restored conversation); "system" sets the
        system prompt."""
        self._h.add_message(role, content)

    def restart(self, system: str | None = None) -> None:
        """Clears the conversation; the system prompt stays (``system`` replaces it; "" removes it)."""
        self._h.restart(system)

    @property
    def system(self) -> str:
        return self._h.system

    @system.setter
    def system(self, text: str) -> None:
        self._h.system = text

    @property
    def ai_prefix(self) -> str:
        """Text every reply starts with (and the model continues from); "" for none."""
        return self._h.ai_prefix

    @ai_prefix.setter
    def ai_prefix(self, prefix: str) -> None:
        self._h.ai_prefix = prefix

    @property
    def max_tokens(self) -> int | None:
        n = self._h.max_tokens
        return None if n < 0 else n

    @max_tokens.setter
    def max_tokens(self, n: int | None) -> None:
        self._h.max_tokens = n

    @property
    def reversed_role(self) -> bool:
        """Whether the model speaks as the user (set when the Chat is made)."""
        return self._h.reversed_role

    @property
    def template(self) -> str:
        """The chat template's name (one of ``strata_llm.chat_templates()``)."""
        return self._h.template

    @property
    def next_prompt(self) -> str:
        """The exact text the next reply would be generated from (the rendered conversation)."""
        return self._h.next_prompt

    @property
    def stats(self) -> dict[str, Any]:
        """Context tokens in use, messages, turns, the last turn's token counts and speeds, the KV cache
        bytes."""
        return self._h.stats()
