#!/usr/bin/env python3
"""Generate reference ("golden") data for strata from llama.cpp.

Uses the llama-cpp-python bindings (built from the same vendored llama.cpp as
tests/reference/build_llamacpp.sh) through their *low-level* ctypes API, so
that every context parameter is explicit and greedy decoding is a plain argmax
over raw logits (no sampler chain, no penalties).

Writes into --out (default tests/golden):
  smollm2_greedy.json    prompt ids, 64 greedy ids, top-10 logits, for the
                         default context params and with flash attention off
  smollm2_tokenize.json  tokenizer cases (parse_special false / true)
and, with --gemma3 PATH, the same two files for Gemma 3 270M:
  gemma3_greedy.json     (top-10 only: the vocab has 262k entries)
  gemma3_tokenize.json   (extra strings: whitespace runs, ZWJ emoji, scripts,
                         code, the llama-spm vocab test strings, Gemma's
                         <start_of_turn>/<end_of_turn>/<bos> specials)

Usage:
  python3 tests/reference/make_golden.py --smollm2 PATH --out tests/golden
  python3 tests/reference/make_golden.py --gemma3 PATH --no-smollm2

Deterministic: fixed inputs, fixed thread count, argmax with lowest-id
tie-break, sorted JSON keys.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import llama_cpp as L

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CACHE = Path(os.environ.get("STRATA_CACHE", Path.home() / ".cache" / "strata"))

DEFAULT_SMOLLM2 = os.environ.get(
    "STRATA_SMOLLM2", str(CACHE / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf")
)
DEFAULT_VOCAB_INP = os.environ.get(
    "STRATA_GPT2_VOCAB_INP", "/work/shared/models/ggml-vocab-gpt-2.gguf.inp"
)
DEFAULT_SPM_VOCAB_INP = os.environ.get(
    "STRATA_SPM_VOCAB_INP", "/work/shared/models/ggml-vocab-llama-spm.gguf.inp"
)

GGML_TYPE_NAMES = {0: "f32", 1: "f16", 2: "q4_0", 3: "q4_1", 6: "q5_0", 7: "q5_1", 8: "q8_0", 30: "bf16"}
FA_NAMES = {-1: "auto", 0: "disabled", 1: "enabled"}

# --------------------------------------------------------------------------- logging
_LOG_LINES: list[str] = []


@L.llama_log_callback
def _log_cb(level, text, user_data):  # noqa: ARG001
    try:
        _LOG_LINES.append(text.decode("utf-8", "replace"))
    except Exception:
        pass


def log_text_since(mark: int) -> str:
    return "".join(_LOG_LINES[mark:])


# --------------------------------------------------------------------------- llama helpers
class Model:
    def __init__(self, path: str):
        L.llama_log_set(_log_cb, ctypes.c_void_p(0))
        L.llama_backend_init()
        mp = L.llama_model_default_params()
        mp.n_gpu_layers = 0
        self.model = L.llama_model_load_from_file(path.encode(), mp)
        if not self.model:
            raise RuntimeError(f"failed to load {path}")
        self.vocab = L.llama_model_get_vocab(self.model)
        self.n_vocab = L.llama_vocab_n_tokens(self.vocab)
        self.add_bos = bool(L.llama_vocab_get_add_bos(self.vocab))
        self.eos = L.llama_vocab_eos(self.vocab)

    def meta(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(4096)
        n = L.llama_model_meta_val_str(self.model, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", "replace") if n >= 0 else None

    def tokenize(self, text: str, add_special: bool, parse_special: bool) -> list[int]:
        data = text.encode("utf-8")
        n_max = len(data) + 16
        while True:
            buf = (L.llama_token * n_max)()
            n = L.llama_tokenize(self.vocab, data, len(data), buf, n_max, add_special, parse_special)
            if n >= 0:
                return [int(buf[i]) for i in range(n)]
            n_max = -n

    def piece(self, tok: int, special: bool = True) -> bytes:
        buf = ctypes.create_string_buffer(256)
        n = L.llama_token_to_piece(self.vocab, tok, buf, len(buf), 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = L.llama_token_to_piece(self.vocab, tok, buf, len(buf), 0, special)
        return buf.raw[:n]

    def detok(self, toks: list[int]) -> str:
        return b"".join(self.piece(t) for t in toks).decode("utf-8", "replace")

    def is_eog(self, tok: int) -> bool:
        return bool(L.llama_vocab_is_eog(self.vocab, tok))


def make_ctx_params(n_ctx: int, n_batch: int, n_threads: int, flash_attn_type: int | None):
    cp = L.llama_context_default_params()
    cp.n_ctx = n_ctx
    cp.n_batch = n_batch
    cp.n_ubatch = n_batch
    cp.n_seq_max = 1
    cp.n_threads = n_threads
    cp.n_threads_batch = n_threads
    if flash_attn_type is not None:
        cp.flash_attn_type = flash_attn_type
    return cp


def describe_ctx_params(cp) -> dict:
    return {
        "n_ctx": cp.n_ctx,
        "n_batch": cp.n_batch,
        "n_ubatch": cp.n_ubatch,
        "n_seq_max": cp.n_seq_max,
        "n_threads": cp.n_threads,
        "n_threads_batch": cp.n_threads_batch,
        "flash_attn_type_requested": FA_NAMES.get(cp.flash_attn_type, str(cp.flash_attn_type)),
        "type_k": GGML_TYPE_NAMES.get(cp.type_k, str(cp.type_k)),
        "type_v": GGML_TYPE_NAMES.get(cp.type_v, str(cp.type_v)),
        "offload_kqv": bool(cp.offload_kqv),
        "swa_full": bool(cp.swa_full),
        "kv_unified": bool(cp.kv_unified),
        "rope_scaling_type": cp.rope_scaling_type,
        "pooling_type": cp.pooling_type,
    }


def resolved_flash_attn(log: str, requested: int) -> str:
    """For AUTO, llama.cpp probes support and logs 'Flash Attention enabled' or
    'Flash Attention not supported, set to disabled'."""
    if requested != L.LLAMA_FLASH_ATTN_TYPE_AUTO:
        return FA_NAMES[requested]
    res = "unknown"
    for line in log.splitlines():
        low = line.lower()
        if "flash attention not supported" in low:
            res = "disabled"
        elif "flash attention enabled" in low:
            res = "enabled"
    return res


def topk(logits: np.ndarray, k: int) -> dict:
    # stable sort on -logit: ties broken by lowest token id (same as np.argmax)
    idx = np.argsort(-logits, kind="stable")[:k]
    return {"ids": [int(i) for i in idx], "logits": [round(float(logits[i]), 5) for i in idx]}


def greedy(m: Model, cp, prompt_ids: list[int], n_gen: int, n_top_pos: int, k: int):
    ctx = L.llama_init_from_model(m.model, cp)
    if not ctx:
        raise RuntimeError("llama_init_from_model failed")
    try:
        def decode(toks: list[int]) -> np.ndarray:
            arr = (L.llama_token * len(toks))(*toks)
            batch = L.llama_batch_get_one(arr, len(toks))
            rc = L.llama_decode(ctx, batch)
            if rc != 0:
                raise RuntimeError(f"llama_decode rc={rc}")
            ptr = L.llama_get_logits_ith(ctx, -1)
            return np.ctypeslib.as_array(ptr, shape=(m.n_vocab,)).astype(np.float32).copy()

        assert len(prompt_ids) <= cp.n_batch
        logits = decode(prompt_ids)
        gen: list[int] = []
        tops = []
        margins = []
        for step in range(n_gen):
            if step <= n_top_pos:
                t = topk(logits, k)
                t["pos"] = "prompt_last" if step == 0 else f"gen_{step - 1}"
                tops.append(t)
            tok = int(np.argmax(logits))
            top2 = np.partition(logits, -2)[-2:]
            margins.append(round(float(top2[1] - top2[0]), 4))
            gen.append(tok)
            if step + 1 < n_gen:
                logits = decode([tok])
        return gen, tops, margins
    finally:
        L.llama_free(ctx)


# --------------------------------------------------------------------------- prompts
CHAT = "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"

def greedy_prompts(chat: str, tail: list) -> list:
    """The greedy prompts both models share (chat ones in the model's own format), then model-specific ones.
    (name, text, parse_special)."""
    return [
        ("capital_france", "The capital of France is", False),
        ("fibonacci", "def fibonacci(n):", False),
        ("once_upon", "Once upon a time", False),
        ("chat_planets", chat.format("What are the three largest planets in the solar system?"), True),
        ("number_list", "1, 2, 3, 4, 5, 6, 7,", False),
        ("recipe", "Here is a simple recipe for pancakes:\n\nIngredients:\n-", False),
        ("json", '{"name": "Alice", "age": 30, "city":', False),
        ("history", "In 1969, Neil Armstrong became the first person to", False),
        ("translate", "English: Hello, how are you?\nFrench:", False),
        ("cpp_code", "#include <iostream>\n\nint main() {\n    std::cout <<", False),
        ("chat_haiku", chat.format("Write a haiku about the ocean."), True),
        ("leading_space", " The quick brown fox", False),
    ] + tail


UNICODE_PROMPT = ("unicode", "Café, naïve, résumé — these words come from", False)
GREEDY_PROMPTS = greedy_prompts(CHAT, [("single_token", "Hello", False), UNICODE_PROMPT])


# --------------------------------------------------------------------------- tokenizer strings
def tokenizer_strings() -> list[str]:
    s: list[str] = [
        "",
        " ", "  ", "   ", "    ", "        ", "\t", "\t\t", "\n", "\n\n", "\n\n\n", "\r\n", "\r", " \n", "\n ",
        " \t \n ", "\t\n\t", "a  b", "a   b", "a\tb", "a\nb", "a \n b", "   leading", "trailing   ",
        "  two leading", " one leading", "x\n\n\ny", "end with newline\n", "    indented\n        more",
        # contractions
        "it's", "they're", "we've", "you'll", "I'm", "he'd", "don't", "IT'S", "They'RE", "We'VE",
        "You'LL", "can't won't shouldn't", "'s 're 've 'll 'm 'd 't", "rock 'n' roll", "the dog's bone",
        "O'Brien's", "''quoted''",
        # numbers
        "0", "7", "42", "123", "1234", "12345", "123456", "1234567", "12345678", "123456789",
        "1234567890", "31415926535897932384626433832795", "3.14159", "-273.15", "1,000,000",
        "1e-10", "0x7fffffff", "2024-01-15", "12:34:56", "$1,299.99", "50%", "v1.2.3", "+1 (555) 010-9999",
        "a1b2c3", "abc123def456", "１２３",
        # punctuation
        "Hello, world!", "Wait... what?!", "!!!", "???", "...", "---", "===", "(a) [b] {c} <d>",
        "@user #hashtag", "a/b\\c|d", "~`!@#$%^&*()_+-=", "“smart quotes” and ‘single’", "em—dash en–dash",
        "«guillemets»", "semi;colon:colon", "C'est la vie.", "\"double\" 'single'",
        # emoji
        "🦙", "🚀🚀🚀", "I love 🍕!", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷🇯🇵", "❤️", "😀 😃 😄 😁", "✅ done",
        # CJK
        "你好，世界", "我想在apple工作", "日本語のテキストです。", "こんにちは", "カタカナ", "한국어 텍스트",
        "漢字と仮名", "中文 English 混合",
        # accented Latin
        "Äpfel", "Ünïcödé", "café", "naïve résumé", "Cửa Việt", "señor niño", "Ærøskøbing", "Straße",
        "Łódź Kraków", "İstanbul ığdır", "façade", "ÀÉÎÕÜ àéîõü",
        # Cyrillic / Greek / Arabic / Hebrew / Indic / Thai
        "Привет, мир!", "нещо на Български", "Съешь же ещё этих мягких французских булок",
        "Ελληνικά γράμματα", "مرحبا بالعالم", "السلام عليكم", "שלום עולם", "नमस्ते दुनिया",
        "สวัสดีครับ", "კარგი", "Հայերեն", "ကာန်တဲ",
        # code
        "def foo(x):\n    return x + 1\n", "int main() { return 0; }", "for (int i = 0; i < n; ++i) {",
        "#include <stdio.h>", "if x == None:\n\tpass", "console.log(`hi ${name}`);",
        "SELECT * FROM users WHERE id = 42;", "<div class=\"a\">text</div>", "x = [1, 2, 3]",
        "lambda x: x**2", "std::vector<int> v{1,2,3};", "fn main() -> Result<(), Box<dyn Error>> {",
        "    \n    ", "// comment\n/* block */", "a->b", "a::b", "a && b || !c", "i++; j--;",
        "https://example.com/path?q=1&r=2#frag", "user@example.com", "C:\\Windows\\System32",
        "{\"key\": [1, 2, {\"n\": null}]}", "$ ls -la | grep foo > out.txt",
        # mixed case
        "HELLO WORLD", "hello world", "Hello World", "hElLo WoRlD", "CamelCaseIdentifier",
        "snake_case_identifier", "SCREAMING_SNAKE_CASE", "iPhone macOS GitHub", "McDonald's",
        # long words
        "supercalifragilisticexpialidocious", "antidisestablishmentarianism",
        "pneumonoultramicroscopicsilicovolcanoconiosis",
        "Donaudampfschifffahrtselektrizitätenhauptbetriebswerkbauunterbeamtengesellschaft",
        "a" * 64, "ab" * 40, "xyzzy" * 13, "-" * 50, "=" * 33, "0" * 40, " " * 40, "\n" * 20,
        # sentences
        "The quick brown fox jumps over the lazy dog.",
        "Once upon a time, there was a little girl named Lily.",
        "In 1492, Columbus sailed the ocean blue.",
        "Machine learning is a subset of artificial intelligence.",
        "She said, \"I'll be there at 5 o'clock.\"",
        "The temperature was -5°C (23°F) yesterday.",
        # special-looking strings (with parse_special=false these are plain text)
        "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<s></s>", "<unk>", "[INST]", "<|user|>",
        # misc unicode
        "\u00a0non-breaking\u00a0space", "zero\u200bwidth", "tab\u3000ideographic space", "½ ¼ ¾",
        "∑ ∫ √ ∞ ≈ ≠", "→ ← ↑ ↓", "™ © ®", "\u2028line sep", "ﬁ ligature", "Ａ full-width",
        "e\u0301 combining", "ᚠᛇᚻ runes",
    ]
    return s


def parse_special_strings() -> list[str]:
    return [
        "<|im_start|>",
        "<|im_end|>",
        "<|endoftext|>",
        "<|im_start|>user\nHello<|im_end|>",
        CHAT.format("What is 2+2?"),
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\nHello! How can I help?<|im_end|>\n",
        "<|im_end|><|im_start|>",
        "<|im_start|><|im_start|><|im_end|>",
        " <|im_start|> ",
        "text<|im_end|>text",
        "Hello <|im_end|> world",
        "<|im_start|>assistant\n",
        "<|im_start",
        "<|im_start|",
        "im_start|>",
        "<|IM_START|>",
        "< |im_start| >",
        "<|im_start|>user\n  leading spaces<|im_end|>",
        "<|endoftext|>The end.",
        "\n<|im_end|>\n",
        "<|im_start|>user\n你好 🦙<|im_end|>",
        "<|im_start|>user\ndef f(x):\n    return x<|im_end|>\n<|im_start|>assistant\n",
    ]


def gpt2_vocab_strings(path: str) -> list[str]:
    p = Path(path)
    if not p.is_file():
        print(f"warning: {path} not found; skipping gpt-2 vocab test strings", file=sys.stderr)
        return []
    text = p.read_text(encoding="utf-8")
    cases = text.split("\n__ggml_vocab_test__\n")
    if cases and cases[-1] == "":  # trailing separator
        cases.pop()
    return cases


# --------------------------------------------------------------------------- Gemma 3
GEMMA_CHAT = "<start_of_turn>user\n{}<end_of_turn>\n<start_of_turn>model\n"

# BOS is added as the model's add_bos says (Gemma: yes)
GEMMA3_GREEDY_PROMPTS = greedy_prompts(GEMMA_CHAT, [UNICODE_PROMPT, ("multilingual", "日本の首都は東京です。한국의 수도는", False)])


def gemma3_extra_strings() -> list[str]:
    """Strings that stress an SPM vocab with byte fallback and no space prefix (Gemma 3)."""
    s: list[str] = [
        # whitespace runs (Gemma has dedicated tokens for runs of spaces, tabs and newlines)
        " " * 2, " " * 3, " " * 5, " " * 7, " " * 8, " " * 15, " " * 16, " " * 17, " " * 31, " " * 32, " " * 33,
        " " * 64, " " * 100, "\t" * 3, "\t" * 4, "\t" * 8, "\t" * 17, "\n" * 4, "\n" * 5, "\n" * 8, "\n" * 31,
        "\n" * 33, "\r\n" * 4, " \t" * 6, "\t \n" * 4, "a" + " " * 9 + "b", "a" + "\t" * 5 + "b", "a" + "\n" * 6 + "b",
        "  a  ", "   a   b   ", "\tx\t", "\nx\n", " \n \n ", "x \n", "x\n ", " " * 4 + "return 0;",
        "\t\tif (x) {\n\t\t\ty();\n\t\t}", "line1\n\n\n\nline2", "trailing tab\t", "trailing spaces    ",
        "    ", "\u3000\u3000", "\u00a0\u00a0\u00a0", "  \u00a0  ",
        # emoji, skin tones, ZWJ sequences, flags, keycaps, variation selectors
        "👩‍💻", "👨‍👩‍👧", "🏳️‍🌈", "🧑🏿‍🚀", "👩🏽‍❤️‍💋‍👨🏻", "🐻‍❄️", "😶‍🌫️", "❤️‍🔥", "1️⃣2️⃣3️⃣", "#️⃣",
        "🇺🇸🇩🇪🇧🇷🇮🇳", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "☺︎ ☺️", "Great job! 🎉🎉 Let's go 🚀", "🙂🙃🫠🫡", "emoji🦙in🦙text",
        # CJK, Korean, Arabic, Hindi, other scripts
        "东京是日本的首都。", "北京欢迎你", "机器学习和人工智能", "ひらがなとカタカナと漢字", "ｶﾀｶﾅ",
        "안녕하세요, 세계!", "대한민국의 수도는 서울입니다.", "한글 자모: ㄱㄴㄷㄹ ㅏㅑㅓㅕ", "𠜎𠜱𠝹𠱓",
        "اللغة العربية جميلة", "مرحبا 123 عالم", "كتاب", "हिन्दी भाषा", "मेरा नाम राम है।", "क्षत्रिय",
        "தமிழ் மொழி", "বাংলা ভাষা", "ગુજરાતી", "ਪੰਜਾਬੀ", "తెలుగు", "മലയാളം", "සිංහල", "ພາສາລາວ", "བོད་ཡིག",
        "አማርኛ", "ᐃᓄᒃᑎᑐᑦ", "Tiếng Việt có dấu", "Ελληνικά: αβγδε ΑΒΓΔΕ", "עברית עם ניקוד: שָׁלוֹם",
        # accented Latin and decomposed forms
        "Crème brûlée à la française", "Åsa Øberg Ærø", "Ñandú pingüino", "Żółć gęślą jaźń", "Çà et là",
        "Dvořák Škoda Čapek", "Jökull Þór Ð", "ǅemal ǈ ǋ", "A\u030a e\u0301 n\u0303 o\u0308", "ﬀ ﬃ ﬄ",
        # code in several languages
        "def add(a: int, b: int) -> int:\n    \"\"\"Add.\"\"\"\n    return a + b\n",
        "class Foo:\n    def __init__(self):\n        self.x = {'a': [1, 2]}\n",
        "fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * x).collect();\n    println!(\"{:?}\", v);\n}",
        "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n",
        "public static void main(String[] args) {\n    System.out.println(\"Hello\");\n}",
        "const f = async (x) => { await g(x); return x?.y ?? 0; };",
        "#!/bin/bash\nfor f in *.txt; do\n  echo \"$f\" | tr a-z A-Z\ndone",
        "template <typename T>\nT max(T a, T b) { return a > b ? a : b; }",
        "SELECT name, COUNT(*) AS n\nFROM t\nGROUP BY name\nHAVING n > 1;",
        "<!DOCTYPE html>\n<html lang=\"en\">\n  <body><p>Hi &amp; bye</p></body>\n</html>",
        "\\begin{equation}\n  E = mc^2 \\quad \\int_0^\\infty e^{-x}\\,dx\n\\end{equation}",
        "{\n  \"name\": \"strata\",\n  \"version\": \"0.1.0\",\n  \"tags\": [\"llm\", \"c++\"]\n}",
        "- item one\n- item two\n  - nested\n\n| a | b |\n|---|---|\n| 1 | 2 |",
        "x <<= 2; y >>= 3; z **= 4; w //= 5;", "if (a != b && c <= d || e >= f) { g(); }",
        "    # comment with    spaces", "\t// tab-indented comment", "key:\n  - a\n  - b\nother: 'c'",
        # numbers
        "3.141592653589793", "6.022e23", "-0.0001", "1,234,567.89", "100000000000000000000", "007", "0.5%",
        "12/31/1999 23:59:59", "IPv4 192.168.0.1", "+44 20 7946 0958", "1st 2nd 3rd 4th", "MCMXCIV", "٣٤٥ ۱۲۳ १२३",
        # URLs and identifiers
        "https://www.example.org/a/b/c.html?x=1&y=%20z#top", "http://localhost:8080/api/v1/users/42",
        "ftp://files.example.com/pub/file.tar.gz", "mailto:someone@example.co.uk", "www.google.com",
        "git@github.com:user/repo.git", "/usr/local/bin/python3", "~/.config/strata/config.toml",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "UUID 123e4567-e89b-12d3-a456-426614174000",
        # SPM edge cases
        "▁", "▁▁", "▁hello", "a▁b", "<0x41>", "<0x0A>", "<pad>", "<eos>", "<mask>", "[multimodal]", "<start_of_image>",
        "\x00", "\x01\x02\x03", "\x7f", "\u200d", "\ufeffBOM", "\ufffd", "\U0010ffff", "\U0001f9ff",
        "Hello", " Hello", "  Hello", "Hello ", "hello world", " hello world", "HELLO", "h e l l o",
    ]
    return s


def gemma3_special_strings() -> list[str]:
    return [
        "<start_of_turn>",
        "<end_of_turn>",
        "<bos>",
        "<eos>",
        "<bos><start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n",
        GEMMA_CHAT.format("What is 2+2?"),
        "<start_of_turn>user\nHi!<end_of_turn>\n<start_of_turn>model\nHello! How can I help?<end_of_turn>\n"
        "<start_of_turn>user\nTell me a joke.<end_of_turn>\n<start_of_turn>model\n",
        "<end_of_turn><start_of_turn>",
        "<start_of_turn><start_of_turn><end_of_turn>",
        " <start_of_turn> ",
        "text<end_of_turn>text",
        "Hello <end_of_turn> world",
        "<start_of_turn>model\n",
        "<start_of_turn",
        "start_of_turn>",
        "<START_OF_TURN>",
        "< start_of_turn >",
        "<start_of_turn>user\n  leading spaces<end_of_turn>",
        "<bos>The end.",
        "\n<end_of_turn>\n",
        "<start_of_turn>user\n你好 🦙<end_of_turn>",
        "<start_of_turn>user\ndef f(x):\n    return x<end_of_turn>\n<start_of_turn>model\n",
        "<bos><bos>",
        "<start_of_image>",
    ]


# --------------------------------------------------------------------------- main
def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def llama_info() -> dict:
    info = {"llama_cpp_python": L.__version__}
    src = CACHE / "llamacpp" / "src" / ".git" / "modules" / "vendor" / "llama.cpp" / "HEAD"
    if src.is_file():
        info["llama_cpp_commit"] = src.read_text().strip()[:40]
    ver = CACHE / "llamacpp" / "VERSION.txt"  # written by build_llamacpp.sh
    if ver.is_file():
        for line in ver.read_text().splitlines():
            if line.strip().startswith("version:"):
                info["llama_cpp_version"] = line.split(":", 1)[1].strip()
            elif line.startswith("extra_cflags:"):
                info["extra_cflags"] = line.split(":", 1)[1].strip()
    try:
        info["system_info"] = L.llama_print_system_info().decode().strip()
    except Exception:
        pass
    return info


def write_json(path: Path, obj) -> None:
    text = json.dumps(obj, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
    path.write_text(text, encoding="utf-8")
    kb = len(text.encode("utf-8")) / 1024
    print(f"wrote {path} ({kb:.1f} KiB)")
    if kb > 300:
        print(f"warning: {path} exceeds 300 KiB", file=sys.stderr)


@dataclass
class Family:
    name: str  # file prefix: {name}_tokenize.json, {name}_greedy.json
    vocab_name: str
    tokenize_sources: list  # [(strings, source label, parse_special)]
    greedy_prompts: list  # [(name, text, parse_special)]


def make_family(fam: Family, path: str, args) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    m = Model(path)
    model_info = {
        "file": os.path.basename(path),
        "sha256": sha256(path),
        "n_vocab": m.n_vocab,
        "add_bos": m.add_bos,
        "tokenizer.ggml.add_bos_token": m.meta("tokenizer.ggml.add_bos_token"),
        "tokenizer.ggml.pre": m.meta("tokenizer.ggml.pre"),
        "tokenizer.ggml.model": m.meta("tokenizer.ggml.model"),
        "general.name": m.meta("general.name"),
    }
    info = llama_info()

    # ------------------------------------------------------------------ tokenizer
    if not args.skip_tokenize:
        cases = []
        seen = set()

        def add(text: str, source: str, parse_special: bool):
            key = (text, parse_special)
            if key in seen:
                return
            seen.add(key)
            cases.append({
                "text": text,
                "source": source,
                "add_special": False,
                "parse_special": parse_special,
                "ids": m.tokenize(text, add_special=False, parse_special=parse_special),
            })

        for strings, source, parse_special in fam.tokenize_sources:
            for t in strings:
                add(t, source, parse_special)
        # add_special=true sanity case (SmolLM2 adds no BOS/EOS; recorded for completeness)
        add_special_case = {
            "text": "Hello world",
            "add_special": True,
            "parse_special": False,
            "ids": m.tokenize("Hello world", add_special=True, parse_special=False),
        }
        write_json(out / f"{fam.name}_tokenize.json", {
            "description": f"llama.cpp llama_tokenize() output for {fam.vocab_name} vocab. "
                           "Each case: text (UTF-8), add_special, parse_special, ids.",
            "generator": "tests/reference/make_golden.py",
            "llama_cpp": info,
            "model": model_info,
            "n_cases": len(cases),
            "cases": cases,
            "add_special_case": add_special_case,
        })

    # ------------------------------------------------------------------ greedy
    if not args.skip_greedy:
        prompts = []
        for name, text, parse_special in fam.greedy_prompts:
            ids = m.tokenize(text, add_special=m.add_bos, parse_special=parse_special)
            if m.add_bos and (not ids or ids[0] != L.llama_vocab_bos(m.vocab)):
                ids = [L.llama_vocab_bos(m.vocab)] + ids
            prompts.append((name, text, parse_special, ids))

        # (run name, flash_attn_type or None = llama.cpp default, KV type or None = default)
        run_defs = [
            ("default", None, None),
            ("flash_attn_off", L.LLAMA_FLASH_ATTN_TYPE_DISABLED, None),
            ("flash_attn_off_kv_f32", L.LLAMA_FLASH_ATTN_TYPE_DISABLED, L.GGML_TYPE_F32),
        ]
        runs = {}
        for run_name, fa, kv in run_defs:
            cp = make_ctx_params(args.n_ctx, args.n_batch, args.threads, fa)
            if kv is not None:
                cp.type_k = kv
                cp.type_v = kv
            settings = describe_ctx_params(cp)
            mark = len(_LOG_LINES)
            results = []
            for name, text, parse_special, ids in prompts:
                gen, tops, margins = greedy(m, cp, ids, args.n_gen, args.n_top_pos, args.top_k)
                eog = next((i for i, t in enumerate(gen) if m.is_eog(t)), None)
                results.append({
                    "name": name,
                    "generated_ids": gen,
                    "generated_text": m.detok(gen),
                    "first_eog_index": eog,
                    "top_logits": tops,
                    "top1_top2_margin": margins,
                })
            run_log = log_text_since(mark)
            settings["flash_attn_resolved"] = resolved_flash_attn(run_log, cp.flash_attn_type)
            settings["kv_cache_log"] = next((ln.split("llama_kv_cache:", 1)[1].strip()
                                             for ln in run_log.splitlines() if "llama_kv_cache: size" in ln), None)
            runs[run_name] = {"settings": settings, "results": results}
            print(f"[{run_name}] flash_attn resolved: {settings['flash_attn_resolved']}, "
                  f"type_k/v {settings['type_k']}/{settings['type_v']}")

        def compare(base: list[dict], other: list[dict]) -> dict:
            diffs = []
            max_diff = 0.0
            for a, b in zip(base, other):
                first = next((i for i, (x, y) in enumerate(zip(a["generated_ids"], b["generated_ids"])) if x != y), None)
                if first is not None:
                    diffs.append({"name": a["name"], "first_diff_index": first})
                # logits are only comparable while both runs saw the same tokens:
                # top_logits[j] predicts generated token j, so j <= first is same-context
                for j, (ta, tb) in enumerate(zip(a["top_logits"], b["top_logits"])):
                    if first is not None and j > first:
                        break
                    da = dict(zip(ta["ids"], ta["logits"]))
                    db = dict(zip(tb["ids"], tb["logits"]))
                    for i in set(da) & set(db):
                        max_diff = max(max_diff, abs(da[i] - db[i]))
            return {
                "greedy_differs_from_default": diffs,
                "n_cases_identical": len(base) - len(diffs),
                "max_abs_logit_diff_vs_default_same_context": round(max_diff, 5),
            }

        cases = []
        for (name, text, parse_special, ids), r in zip(prompts, runs["default"]["results"]):
            assert r["name"] == name
            cases.append({
                "name": name,
                "prompt": text,
                "add_bos": m.add_bos,
                "parse_special": parse_special,
                "prompt_ids": ids,
                **{k: v for k, v in r.items() if k != "name"},
            })
        alt = {}
        for run_name, _, _ in run_defs[1:]:
            res = runs[run_name]["results"]
            alt[run_name] = {
                "settings": runs[run_name]["settings"],
                "results": [{k: r[k] for k in ("name", "generated_ids", "first_eog_index", "top_logits",
                                               "top1_top2_margin")} for r in res],
                **compare(runs["default"]["results"], res),
            }
            print(f"[{run_name}] vs default: {alt[run_name]['n_cases_identical']}/{len(res)} identical; "
                  f"diffs {alt[run_name]['greedy_differs_from_default']}; max same-context logit diff "
                  f"{alt[run_name]['max_abs_logit_diff_vs_default_same_context']}")
        write_json(out / f"{fam.name}_greedy.json", {
            "description": "Greedy decoding reference from llama.cpp. Prompt evaluated in one batch, "
                           "then one token per llama_decode; next token = argmax of raw logits "
                           "(lowest id on ties), no sampler/penalties; generation does NOT stop at EOG "
                           "(first_eog_index marks it). top_logits: prompt_last = logits after the prompt, "
                           "gen_i = logits after feeding generated token i (i.e. predicting token i+1). "
                           "top1_top2_margin[j] = logit gap at the step that chose generated token j. "
                           "Logits rounded to 5 decimals. 'cases' = llama.cpp default context params "
                           "(flash_attn auto -> enabled on CPU, f16 KV); 'alt_runs' = same prompts with "
                           "flash attention off (f16 KV) and off with f32 KV.",
            "generator": "tests/reference/make_golden.py",
            "llama_cpp": info,
            "model": model_info,
            "n_gen": args.n_gen,
            "top_k": args.top_k,
            "settings": runs["default"]["settings"],
            "cases": cases,
            "alt_runs": alt,
        })
        for c in cases[:4]:
            print(f"--- {c['name']}: {c['prompt']!r}\n{c['generated_text']!r}")

    L.llama_model_free(m.model)

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smollm2", default=DEFAULT_SMOLLM2, help="SmolLM2-135M-Instruct GGUF (env STRATA_SMOLLM2)")
    ap.add_argument("--out", default=str(REPO / "tests" / "golden"))
    ap.add_argument("--vocab-inp", default=DEFAULT_VOCAB_INP, help="ggml-vocab-gpt-2.gguf.inp test strings")
    ap.add_argument("--no-smollm2", action="store_true", help="skip the SmolLM2 files")
    ap.add_argument("--gemma3", default=None, help="Gemma 3 270M GGUF: also write gemma3_*.json")
    ap.add_argument("--spm-vocab-inp", default=DEFAULT_SPM_VOCAB_INP,
                    help="ggml-vocab-llama-spm.gguf.inp test strings (Gemma 3 cases)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-ctx", type=int, default=512)
    ap.add_argument("--n-batch", type=int, default=512)
    ap.add_argument("--n-gen", type=int, default=64)
    ap.add_argument("--n-top-pos", type=int, default=8, help="generated positions with top-k (besides prompt_last)")
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--skip-greedy", action="store_true")
    ap.add_argument("--skip-tokenize", action="store_true")
    args = ap.parse_args()

    if not args.no_smollm2:
        make_family(Family(
            name="smollm2",
            vocab_name="SmolLM2-135M-Instruct",
            tokenize_sources=[
                (tokenizer_strings(), "strata", False),
                (gpt2_vocab_strings(args.vocab_inp), "ggml-vocab-gpt-2.gguf.inp", False),
                (parse_special_strings(), "strata_special", True),
            ],
            greedy_prompts=GREEDY_PROMPTS,
        ), args.smollm2, args)
    if args.gemma3:
        make_family(Family(
            name="gemma3",
            vocab_name="Gemma 3 (270M)",
            tokenize_sources=[
                (tokenizer_strings(), "strata", False),
                (gemma3_extra_strings(), "strata_gemma3", False),
                (gpt2_vocab_strings(args.spm_vocab_inp), "ggml-vocab-llama-spm.gguf.inp", False),
                (gemma3_special_strings(), "strata_gemma3_special", True),
            ],
            greedy_prompts=GEMMA3_GREEDY_PROMPTS,
        ), args.gemma3, args)
    return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
