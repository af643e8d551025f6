"""Bad inputs raise the right exception with the engine's message, and leave everything usable: never a
crash."""

from __future__ import annotations

import pytest
from conftest import THREADS

import strata_llm
from strata_llm import ContextOverflowError, LayerSpecError, ModelLoadError, StrataError


def test_the_exception_classes():
    for cls in (ModelLoadError, LayerSpecError, ContextOverflowError):
        assert issubclass(cls, StrataError) and issubclass(cls, ValueError)
    assert issubclass(StrataError, RuntimeError)


def test_files_that_are_not_models(tmp_path):
    with pytest.raises(
        ModelLoadError, match=r"cannot open '/nonexistent/model.gguf': No such file or directory"
    ):
        strata_llm.Model("/nonexistent/model.gguf")
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    with pytest.raises(ModelLoadError, match="is empty"):
        strata_llm.Model(empty)
    text = tmp_path / "text.gguf"
    text.write_text("hello, this is not a model\n" * 100)
    with pytest.raises(ModelLoadError, match=r"not a GGUF file \(bad magic\) and not a llama2.c checkpoint"):
        strata_llm.Model(text)
    with pytest.raises(
        ValueError
    ):  # ModelLoadError is a ValueError, as llama-cpp-python raises for a bad path
        strata_llm.Model(tmp_path / "missing.gguf")


def test_a_truncated_file(smollm2, tmp_path):
    cut = tmp_path / "trunc.gguf"
    with open(smollm2, "rb") as f:
        cut.write_bytes(f.read(100_000))
    with pytest.raises(ModelLoadError, match="truncated|more than the file can hold|runs past the end"):
        strata_llm.Model(cut)
    assert all(f["path"] != str(cut) for f in strata_llm.mapped_files())  # nothing of it stays registered


def test_bad_layer_specs(stories):
    with pytest.raises(
        LayerSpecError, match=r"layer spec item '0:99': stop 99 is outside the model \(the model has 5"
    ):
        strata_llm.Model(stories, layer_spec="0:99")
    with pytest.raises(LayerSpecError, match="empty item"):
        strata_llm.Model(stories, layer_spec="0:2,,3")
    with pytest.raises(LayerSpecError, match="step"):
        strata_llm.Model(stories, layer_spec="0:4:0")
    with pytest.raises(ValueError):
        strata_llm.Model(stories, layer_spec="banana")
    with pytest.raises(LayerSpecError, match="0:7"):
        strata_llm.profile(stories, ["0:3", "0:7"], strata_llm.sample_text(), n_ctx=64)


def test_context_overflow(stories):
    m = strata_llm.Model(stories, n_ctx=16, n_threads=THREADS)
    long = "Once upon a time there was a little girl who lived in a village near the forest."
    with pytest.raises(ContextOverflowError, match=r"tokens do not fit the context of 16 \(raise n_ctx"):
        m.generate(long)
    with pytest.raises(ContextOverflowError):
        list(m.generate(long, stream=True))
    with pytest.raises(ContextOverflowError, match="context of 16"):
        m.eval(m.tokenize(long))
    assert m.n_tokens == 0  # refused before anything was evaluated
    m.eval(m.tokenize("Once upon"))
    with pytest.raises(ContextOverflowError):
        m.eval(m.tokenize(long, add_bos=False))
    assert m.generate("Once", max_tokens=4)  # still usable


def test_a_chat_message_too_long_for_the_context(smollm2):
    chat = strata_llm.Chat(strata_llm.Model(smollm2, n_ctx=64, n_threads=THREADS), max_tokens=8)
    with pytest.raises(ContextOverflowError, match="message too long"):
        chat.send("word " * 200)
    assert chat.history == []  # the history is left as it was
    chat.send("Hi")
    strict = strata_llm.Chat(
        strata_llm.Model(smollm2, n_ctx=96, n_threads=THREADS), max_tokens=8, overflow="error"
    )
    strict.send("Hello there, how are you today?")
    with pytest.raises(ContextOverflowError, match="context full"):
        for _ in range(5):
            strict.send("And what else can you tell me about the weather today?")


def test_chat_templates_and_roles(stories, smollm2):
    with pytest.raises(ValueError, match="no chat template"):
        strata_llm.Chat(strata_llm.Model(stories))
    assert strata_llm.Chat(strata_llm.Model(stories), template="chatml").template == "chatml"
    with pytest.raises(ValueError, match="chatml"):  # the message names the choices
        strata_llm.Chat(strata_llm.Model(smollm2), template="nope")
    chat = strata_llm.Chat(strata_llm.Model(smollm2))
    with pytest.raises(ValueError, match="nothing to continue"):
        chat.continue_("more")
    with pytest.raises(ValueError, match="unknown role 'robot'"):
        chat.add_message("robot", "beep")
    with pytest.raises(
        ValueError, match="^overflow: unknown context overflow policy 'sometimes'.*shift, restart, error"
    ):
        strata_llm.Chat(strata_llm.Model(smollm2), overflow="sometimes")


def test_bad_arguments(stories):
    m = strata_llm.Model(stories, n_threads=THREADS)
    with pytest.raises(ValueError, match=r"token id 999999 is outside the vocabulary \(0\.\.511\)"):
        m.eval([1, 999999])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        m.detokenize([-1])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        m.generate([5, 70000])
    with pytest.raises(ValueError, match="empty prompt"):
        m.generate([])
    with pytest.raises(ValueError, match="no tokens"):
        m.eval([])
    with pytest.raises(TypeError, match="tokenize"):
        m.eval("Once upon a time")
    # The ranges every front end shares (core/run/settings), in the engine's words, naming the argument.
    with pytest.raises(ValueError, match=r"^seed: -2 is not valid: use a seed >= 0, or -1 for a random one"):
        m.generate("Once", seed=-2)
    with pytest.raises(ValueError, match=r"^repeat_penalty: 0 is not valid: use a factor > 0 \(1: off\)"):
        m.generate("Once", repeat_penalty=0)
    with pytest.raises(ValueError, match=r"^top_p: 1.5 is not valid: use a probability > 0 and <= 1"):
        m.generate("Once", top_p=1.5)
    with pytest.raises(ValueError, match=r"^temperature: 'warm' is not a number"):
        m.generate("Once", temperature="warm")
    with pytest.raises(ValueError, match=r"^top_k: a number, not True"):
        m.generate("Once", top_k=True)
    with pytest.raises(ValueError, match=r"^max_tokens: -3 is not valid"):
        m.generate("Once", max_tokens=-3)
    with pytest.raises(ValueError, match=r"^n_ctx: -5 is not valid: use a size in tokens >= 1, or 0"):
        strata_llm.Model(stories, n_ctx=-5)
    with pytest.raises(ValueError, match=r"^n_batch: 0 is not valid"):
        strata_llm.Model(stories, n_batch=0)
    with pytest.raises(ValueError, match="device"):
        strata_llm.Model(stories, device="tpu")
    with pytest.raises(ValueError, match=r"^max_tokens: 2.5 is not valid"):
        strata_llm.Chat(strata_llm.Model(stories), template="chatml", max_tokens=2.5)
    with pytest.raises(ValueError, match="too short|chunks|fewer"):
        strata_llm.profile(m, ["base"], "Too short.", n_ctx=64)
    m.close()
    with pytest.raises(ValueError, match="closed"):
        m.generate("Once")


def test_a_context_larger_than_memory(stories):
    with pytest.raises(StrataError, match="KV cache, more than this machine's"):
        strata_llm.Model(stories, n_ctx=2_000_000_000)


def test_cuda_without_a_gpu(stories):
    info = strata_llm.system_info()
    if info["gpu"]:
        pytest.skip("this machine has a GPU: device='cuda' works here")
    with pytest.raises(StrataError, match="--device cuda"):
        strata_llm.Model(stories, device="cuda")


def test_an_exception_in_a_stream_consumer_stops_the_generation(smollm2):
    m = strata_llm.Model(smollm2, n_threads=THREADS)
    with pytest.raises(RuntimeError, match="consumer"):
        for i, _ in enumerate(m.generate("Count to a hundred:", max_tokens=500, stream=True)):
            if i == 3:
                raise RuntimeError("the consumer gave up")
    assert m.last_generation["finish_reason"] == "interrupted"
    assert m.last_generation["generated_tokens"] < 100
