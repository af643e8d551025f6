#!/usr/bin/env python3
"""Golden chat-template renderings: what each model's own Jinja template produces.

Renders every template in tests/golden/chat_templates/*.jinja with jinja2 the way Hugging Face transformers'
apply_chat_template does (sandboxed environment, trim_blocks, lstrip_blocks, loop controls, raise_exception,
strftime_now), over one 3-turn conversation with and without a system message, and writes
tests/golden/chat_templates.json. tests/test_chat_template.cpp checks strata's renderer against it, byte for
byte, and that strata recognises each template as the family listed here.

    pip install jinja2 && python3 tests/reference/make_chat_golden.py

The template texts are the models' published ones (see SOURCES below). A case whose template raises (Gemma 2
and Mistral v0.2 reject a system message) is stored as null.
"""
import datetime
import json
import pathlib

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = pathlib.Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "golden" / "chat_templates"
OUT = ROOT / "golden" / "chat_templates.json"

# Fixed "today" for templates that print the date (Llama 3.2's strftime_now); HF passes the real date.
TODAY = datetime.date(2025, 3, 15)

# file -> (family strata must detect, bos_token, eos_token, where the text comes from)
SOURCES = {
    "smollm2-135m-instruct.jinja": ("chatml", "<|im_start|>", "<|im_end|>",
                                    "SmolLM2-135M-Instruct GGUF (tokenizer.chat_template)"),
    "qwen2.5-7b-instruct.jinja": ("chatml", "", "<|im_end|>",
                                  "Qwen/Qwen2.5-7B-Instruct, via llama.cpp models/templates"),
    "openhermes-2.5-mistral-7b.jinja": ("chatml", "<s>", "<|im_end|>",
                                        "teknium/OpenHermes-2.5-Mistral-7B, via llama.cpp tests/test-chat-template.cpp"),
    "llama-3-8b-instruct.jinja": ("llama3", "<|begin_of_text|>", "<|eot_id|>",
                                  "meta-llama/Meta-Llama-3-8B-Instruct tokenizer_config.json"),
    "llama-3.1-8b-instruct.jinja": ("llama3.1", "<|begin_of_text|>", "<|eot_id|>",
                                    "meta-llama/Llama-3.1-8B-Instruct, via llama.cpp models/templates"),
    "llama-3.2-3b-instruct.jinja": ("llama3.1", "<|begin_of_text|>", "<|eot_id|>",
                                    "meta-llama/Llama-3.2-3B-Instruct, via llama.cpp models/templates"),
    "llama-2-7b-chat.jinja": ("llama2", "<s>", "</s>", "meta-llama/Llama-2-7b-chat-hf tokenizer_config.json"),
    "mistral-7b-instruct-v0.2.jinja": ("mistral", "<s>", "</s>",
                                       "mistralai/Mistral-7B-Instruct-v0.2, via llama.cpp tests/test-chat-template.cpp"),
    "mistral-7b-instruct-v0.3.jinja": ("mistral-v3", "<s>", "</s>",
                                       "mistralai/Mistral-7B-Instruct-v0.3 tokenizer_config.json"),
    "mistral-nemo-instruct-2407.jinja": ("mistral-v3-tekken", "<s>", "</s>",
                                         "mistralai/Mistral-Nemo-Instruct-2407, via llama.cpp models/templates"),
    "gemma-2-2b-it.jinja": ("gemma", "<bos>", "<eos>", "google/gemma-2-2b-it, via llama.cpp models/templates"),
    "gemma-3-it.jinja": ("gemma", "<bos>", "<eos>", "google/gemma-3-*-it GGUF (ggml-org/gemma-3-12b-it-GGUF)"),
    "phi-3.5-mini-instruct.jinja": ("phi3", "<s>", "<|endoftext|>",
                                    "microsoft/Phi-3.5-mini-instruct, via llama.cpp models/templates"),
    "phi-3-small-8k-instruct.jinja": ("phi3", "<|endoftext|>", "<|endoftext|>",
                                      "microsoft/Phi-3-small-8k-instruct, via llama.cpp tests/test-chat-template.cpp"),
}

SYSTEM = {"role": "system", "content": "You are a terse assistant. "}
TURNS = [
    {"role": "user", "content": "Hello! Who are you?"},
    {"role": "assistant", "content": "  I am a helpful assistant.\n"},
    {"role": "user", "content": "What is 2 + 2? Answer in one word: ünïcödé, 你好."},
    {"role": "assistant", "content": "Four."},
    {"role": "user", "content": "  Thanks! Now say goodbye in French.  "},
]
# name -> (messages, add_generation_prompt)
CASES = {
    "no_system": (TURNS, True),
    "system": ([SYSTEM] + TURNS, True),
    "no_system_closed": (TURNS[:4], False),
    "system_closed": ([SYSTEM] + TURNS[:4], False),
}


def environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: TODAY.strftime(fmt)
    return env


def main():
    env = environment()
    files = sorted(p.name for p in TEMPLATES.glob("*.jinja"))
    missing = set(SOURCES) ^ set(files)
    if missing:
        raise SystemExit(f"templates and SOURCES disagree: {sorted(missing)}")
    out = {"today": TODAY.strftime("%d %b %Y"), "system": SYSTEM, "turns": TURNS, "templates": []}
    for name in files:
        family, bos, eos, source = SOURCES[name]
        template = env.from_string((TEMPLATES / name).read_text(encoding="utf-8"))
        cases = {}
        for case, (messages, add_generation_prompt) in CASES.items():
            try:
                cases[case] = template.render(messages=messages, add_generation_prompt=add_generation_prompt,
                                              bos_token=bos, eos_token=eos)
            except jinja2.exceptions.TemplateError:
                cases[case] = None
        out["templates"].append({"file": name, "family": family, "bos_token": bos, "eos_token": eos,
                                 "source": source, "cases": cases})
    OUT.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({len(files)} templates)")


if __name__ == "__main__":
    main()
