"""Chat: replies equal `strata chat`'s, and the conversation's settings and history behave as the CLI's."""

from __future__ import annotations

import pytest
from conftest import THREADS, run

import strata_llm

QUESTIONS = ["Hi there!", "What is the capital of Italy?"]


def cli_replies(cli: str, model: str, *args: str) -> str:
    """Without a terminal, `strata chat` prints each reply and a newline on stdout."""
    out = run(cli, "chat", "-m", model, "-t", THREADS, *args, input="".join(q + "\n" for q in QUESTIONS))
    return out.stdout.decode("utf-8", errors="replace")


@pytest.mark.parametrize("spec", ["", "0:20,10:30"])
def test_replies_equal_the_cli(cli, smollm2, spec):
    spec_args = ["--layer-spec", spec] if spec else []
    expected = cli_replies(
        cli, smollm2, "--temp", "0", "--max-new-tokens", "24", "--system", "Be brief.", *spec_args
    )
    m = strata_llm.Model(smollm2, layer_spec=spec or None, n_threads=THREADS)
    chat = strata_llm.Chat(m, system="Be brief.", temperature=0, max_tokens=24)
    replies = [chat.send(q) for q in QUESTIONS]
    assert "".join(r + "\n" for r in replies) == expected
    assert chat.last_turn["reused_tokens"] > 0  # the second turn reused the first's cache
    assert [(h["role"], h["content"]) for h in chat.history] == [
        ("system", "Be brief."),
        ("user", QUESTIONS[0]),
        ("assistant", replies[0]),
        ("user", QUESTIONS[1]),
        ("assistant", replies[1]),
    ]


def test_ai_prefix_equals_the_cli(cli, smollm2):
    expected = cli_replies(cli, smollm2, "--temp", "0", "--max-new-tokens", "16", "--ai-prefix", "Well, ")
    chat = strata_llm.Chat(
        strata_llm.Model(smollm2, n_threads=THREADS), ai_prefix="Well, ", temperature=0, max_tokens=16
    )
    replies = [chat.send(q) for q in QUESTIONS]
    assert all(r.startswith("Well, ") for r in replies)
    assert "".join(r + "\n" for r in replies) == expected
    assert chat.ai_prefix == "Well, "
    chat.ai_prefix = ""
    assert not chat.send("Thanks.").startswith("Well, ")


def test_streamed_pieces_join_to_the_reply(smollm2):
    chat = strata_llm.Chat(
        strata_llm.Model(smollm2, n_threads=THREADS), temperature=0, max_tokens=24, ai_prefix="Sure: "
    )
    pieces = list(chat.send("Name three fruits.", stream=True))
    assert pieces[0] == "Sure: " and len(pieces) > 5
    assert "".join(pieces) == chat.history[-1]["content"] == chat.last_turn["text"]


def test_continue_writes_on_in_the_same_message(smollm2):
    chat = strata_llm.Chat(strata_llm.Model(smollm2, n_threads=THREADS), temperature=0, max_tokens=12)
    first = chat.send("Tell me about the moon.")
    more = chat.continue_(" Also,")
    assert more.startswith(" Also,") and len(more) > len(" Also,")
    assert chat.history[-1] == {"role": "assistant", "content": first + more, "truncated": True}
    assert len(chat.history) == 2
    streamed = "".join(chat.continue_(stream=True))
    assert chat.history[-1]["content"] == first + more + streamed


def test_restart_system_and_history(smollm2):
    m = strata_llm.Model(smollm2, n_threads=THREADS)
    chat = strata_llm.Chat(m, system="You are a pirate.", temperature=0, max_tokens=8)
    assert chat.template == "chatml" and chat.system == "You are a pirate."
    chat.send("Hello")
    assert [h["role"] for h in chat.history] == ["system", "user", "assistant"]
    chat.restart()
    assert chat.history == [{"role": "system", "content": "You are a pirate."}]
    chat.restart(system="You are a robot.")
    assert chat.history == [{"role": "system", "content": "You are a robot."}]
    chat.system = ""
    assert chat.history == []
    chat.add_message("user", "Hi")
    chat.add_message("assistant", "Hello!")
    assert chat.next_prompt.endswith(
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!"
    )  # goes on
    chat.add_message("user", "How are you?")
    assert chat.next_prompt.endswith(
        "Hello!<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\n"
    )
    restored = strata_llm.Chat(m, history=chat.history, temperature=0, max_tokens=8)
    assert restored.history == chat.history
    assert restored.send("Bye") == chat.send("Bye")  # the same conversation gives the same reply


def test_reversed_role_speaks_as_the_user(cli, smollm2):
    chat = strata_llm.Chat(
        strata_llm.Model(smollm2, n_threads=THREADS), reversed_role=True, temperature=0, max_tokens=16
    )
    assert chat.reversed_role
    reply = chat.send("How can I help you today?")
    assert [h["role"] for h in chat.history] == ["assistant", "user"]
    assert chat.history[0]["content"] == "How can I help you today?" and chat.history[1]["content"] == reply
    # `strata chat --reversed-role` gives the same reply to the same message.
    out = run(
        cli,
        "chat",
        "-m",
        smollm2,
        "-t",
        THREADS,
        "--reversed-role",
        "--temp",
        "0",
        "--max-new-tokens",
        "16",
        input="How can I help you today?\n",
    )
    assert out.stdout.decode() == reply + "\n"


def test_two_chats_over_one_model_keep_their_own_conversations(smollm2):
    m = strata_llm.Model(smollm2, n_threads=THREADS)
    a = strata_llm.Chat(m, temperature=0, max_tokens=8)
    b = strata_llm.Chat(m, temperature=0, max_tokens=8)
    ra = a.send("Say A.")
    b.send("Say B.")
    assert len(a.history) == 2 and len(b.history) == 2
    assert strata_llm.Chat(m, temperature=0, max_tokens=8).send("Say A.") == ra
    assert a.stats["turns"] == 1 and a.stats["kv_bytes"] > 0
