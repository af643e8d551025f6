"""The multi-model programs' text logic, shared with `strata cobblers` and `strata think`
(core/run/programs.h; after chatllm.cpp's threecobblers.py and ya_o1.py).

- ``router_prompt(domains, question)``: "Please classify the question to one of these classes: ..."
- ``choose_domain(reply, domains) -> (index, reason)``: the domain a router's reply picks (the first domain
  name in it, else a stand-alone number 1..N, else the last domain, the catch-all).
- ``THINK_PREFIX`` and ``default_think_steps()``: the thinker's ai-prefix and continuation suffixes.
- ``SUMMARIZER_SYSTEM`` and ``summarizer_prompt(question, thinking)``: the summariser's system prompt and its
  per-question prompt.
"""

from ._strata import programs as _p

router_prompt = _p.router_prompt
choose_domain = _p.choose_domain
THINK_PREFIX: str = _p.THINK_PREFIX
default_think_steps = _p.default_think_steps
SUMMARIZER_SYSTEM: str = _p.SUMMARIZER_SYSTEM
summarizer_prompt = _p.summarizer_prompt

__all__ = [
    "router_prompt",
    "choose_domain",
    "THINK_PREFIX",
    "default_think_steps",
    "SUMMARIZER_SYSTEM",
    "summarizer_prompt",
]
