"""strata serve through the official OpenAI Python client (and raw HTTP where the client would refuse to send
the request) on stories260K: the CLI's own output is the reference for what a request must return."""
import concurrent.futures
import json
import os
import socket
import subprocess
import time

import httpx
import openai
import pytest

from strata_server import StrataServer

MODEL = "stories260K"
PROMPTS = ["Once upon a time", "The little dog", "Lily wanted to", "One day, Tim", "The sun was",
           "Mom said", "There was a big tree", "Ben and Anna"]


@pytest.fixture(scope="module")
def server():
    s = StrataServer("--parallel", 8, "-c", 512, "-t", 2, "-b", 64, "--chat-template", "chatml",
                     "--variant", "short=0:3", "--max-body", 65536).start()
    yield s
    assert s.stop() == 0, "".join(s.log)  # SIGTERM: a clean exit


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=120)


def cli(*args):
    """strata's own output: stdout of a CLI command."""
    r = subprocess.run([os.environ["STRATA_BIN"], *map(str, args)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def cli_run(prompt, n, *extra):
    # `run` prints the continuation and a newline
    out = cli("run", "-m", os.environ["STRATA_TEST_MODEL"], "-p", prompt, "-n", n, "--temp", 0, "-c", 512,
              "--no-display-prompt", *extra)
    assert out.endswith("\n")
    return out[:-1]


def complete(client, prompt, max_tokens=40, **kw):
    return client.completions.create(model=MODEL, prompt=prompt, max_tokens=max_tokens, temperature=0, **kw)


# ---- what a request returns ---------------------------------------------------------------------------------

def test_models_lists_each_model_and_variant(client):
    models = {m.id: m for m in client.models.list().data}
    assert set(models) == {MODEL, "short"}
    assert models["short"].model_extra["layer_spec"] == "0:3"
    assert models["short"].model_extra["steps"] == 3
    assert client.models.retrieve("short").id == "short"


def test_completion_equals_cli_run(client):
    r = complete(client, "Once upon a time", 48)
    assert r.object == "text_completion"
    assert r.choices[0].text == cli_run("Once upon a time", 48)
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.completion_tokens <= 48 and r.usage.prompt_tokens > 0


@pytest.mark.parametrize("spec", ["0:2,4", "::-1", "0:3,1:5"])
def test_layer_spec_request_equals_cli_run_with_that_spec(client, spec):
    r = complete(client, "The little dog", 40, extra_body={"layer_spec": spec})
    assert r.choices[0].text == cli_run("The little dog", 40, "--layer-spec", spec)
    # ...and differs from the base plan's text (the spec is not ignored)
    assert r.choices[0].text != complete(client, "The little dog", 40).choices[0].text


def test_variant_equals_cli_run_with_its_spec(client):
    r = client.completions.create(model="short", prompt="Lily wanted to", max_tokens=40, temperature=0)
    assert r.model == "short"
    assert r.choices[0].text == cli_run("Lily wanted to", 40, "--layer-spec", "0:3")


def test_chat_equals_cli_chat(client):
    r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=24,
                                       temperature=0)
    assert r.object == "chat.completion"
    msg = r.choices[0].message
    assert msg.role == "assistant"
    # `strata chat` reading a pipe prints each reply and a newline
    out = subprocess.run([os.environ["STRATA_BIN"], "chat", "-m", os.environ["STRATA_TEST_MODEL"], "--chat-template",
                          "chatml", "--temp", "0", "--max-new-tokens", "24", "-c", "512"],
                         input="Hi\n", capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert msg.content == out.stdout[:-1]
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def stream_text(stream):
    text, finish, usage, roles = "", None, None, []
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            if hasattr(c, "delta"):
                text += c.delta.content or ""
                if c.delta.role:
                    roles.append(c.delta.role)
            else:
                text += c.text
            finish = c.finish_reason or finish
    return text, finish, usage, roles


def test_streamed_chat_equals_whole_chat(client):
    messages = [{"role": "system", "content": "Tell a story."}, {"role": "user", "content": "A cat"}]
    whole = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=60, temperature=0)
    text, finish, usage, roles = stream_text(client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=60, temperature=0, stream=True,
        stream_options={"include_usage": True}))
    assert roles == ["assistant"]
    assert text == whole.choices[0].message.content and len(text) > 20
    assert finish == whole.choices[0].finish_reason
    assert usage.completion_tokens == whole.usage.completion_tokens
    assert usage.prompt_tokens == whole.usage.prompt_tokens


def test_streamed_completion_equals_whole_completion(client):
    whole = complete(client, "One day, Tim", 50)
    text, finish, usage, _ = stream_text(complete(client, "One day, Tim", 50, stream=True))
    assert text == whole.choices[0].text
    assert finish == whole.choices[0].finish_reason
    assert usage is None  # no usage chunk unless stream_options.include_usage asks for one (as OpenAI)


def test_eight_concurrent_requests_each_equal_their_single_request_text(server, client):
    def one(prompt):
        # 256 tokens each: long enough that the few milliseconds between the threads' requests are a small
        # part of each request's time, so that the batching check below does not depend on how fast they start
        return client.completions.create(model=MODEL, prompt=prompt, max_tokens=256, temperature=0,
                                         extra_body={"ignore_eos": True}).choices[0].text

    alone = [one(p) for p in PROMPTS]
    before = server.metrics()
    with concurrent.futures.ThreadPoolExecutor(len(PROMPTS)) as pool:
        together = list(pool.map(one, PROMPTS))
    after = server.metrics()
    assert together == alone
    # ...and they did run together: passes held several requests on average
    passes = after["strata_batched_passes_total"] - before["strata_batched_passes_total"]
    sequences = after["strata_batched_sequences_total"] - before["strata_batched_sequences_total"]
    assert sequences / passes > 2, (sequences, passes)


def test_a_last_assistant_message_is_continued_and_ai_prefix_opens_the_reply(client):
    user = {"role": "user", "content": "Tell me a story"}
    kw = dict(model=MODEL, max_tokens=30, temperature=0)
    cont = client.chat.completions.create(messages=[user, {"role": "assistant", "content": "Once upon a time"}], **kw)
    pref = client.chat.completions.create(messages=[user], extra_body={"ai_prefix": "Once upon a time"}, **kw)
    plain = client.chat.completions.create(messages=[user], **kw)
    # the same prompt either way: the continuation is the prefixed reply without its prefix
    assert pref.choices[0].message.content == "Once upon a time" + cont.choices[0].message.content
    assert pref.choices[0].message.content != plain.choices[0].message.content


def test_stop_sequences_end_the_text_before_them_streamed_or_not(client):
    full = complete(client, "Once upon a time", 60, extra_body={"ignore_eos": True}).choices[0].text
    words = full.split()
    stop = words[len(words) // 2]
    cut = full[:full.index(stop)]
    r = complete(client, "Once upon a time", 60, stop=[stop, "zzzz"], extra_body={"ignore_eos": True})
    assert r.choices[0].text == cut and r.choices[0].finish_reason == "stop"
    text, finish, _, _ = stream_text(complete(client, "Once upon a time", 60, stop=stop, stream=True,
                                              extra_body={"ignore_eos": True}))
    assert (text, finish) == (cut, "stop")


def test_seeded_sampling_repeats(client):
    kw = dict(model=MODEL, prompt="The sun was", max_tokens=40, temperature=1.0, top_p=0.9)
    a = client.completions.create(seed=7, **kw).choices[0].text
    assert client.completions.create(seed=7, **kw).choices[0].text == a
    assert any(client.completions.create(seed=s, **kw).choices[0].text != a for s in (8, 9, 10))


def test_echo_puts_the_prompt_first(client):
    r = complete(client, "Mom said", 10, echo=True)
    assert r.choices[0].text == "Mom said" + complete(client, "Mom said", 10).choices[0].text


# ---- bad requests -------------------------------------------------------------------------------------------

BAD = [
    # (endpoint, body, status, param or None)
    ("chat", b'{"messages": [', 400, None),
    ("chat", b'[1, 2]', 400, None),
    ("chat", b'\xff\xfe{}', 400, None),
    ("completion", b'{"prompt": "a", "max_tokens": 5e999}', 400, None),
    ("chat", {"model": MODEL}, 400, "messages"),
    ("chat", {"messages": []}, 400, "messages"),
    ("chat", {"messages": [{"role": "wizard", "content": "hi"}]}, 400, "messages[0].role"),
    ("chat", {"messages": [{"role": "user", "content": 5}]}, 400, "messages[0].content"),
    ("chat", {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, 400, "messages[0].content[0]"),
    ("chat", {"messages": [{"role": "user", "content": "hi"}], "model": "gpt-5"}, 404, "model"),
    ("completion", {"prompt": "a", "layer_spec": "0:99"}, 400, "layer_spec"),
    ("completion", {"prompt": "a", "layer_spec": "0:4:0"}, 400, "layer_spec"),
    ("completion", {"prompt": "a", "layer_spec": "banana"}, 400, "layer_spec"),
    ("completion", {"prompt": "a", "layer_spec": "all," * 40 + "all"}, 400, "layer_spec"),
    ("completion", {"prompt": "once upon a time " * 200}, 400, "prompt"),
    ("completion", {"prompt": [1, 2, 99999]}, 400, "prompt"),
    ("completion", {"prompt": ["a", "b"]}, 400, "prompt"),
    ("completion", {"prompt": "a", "temperature": -0.5}, 400, "temperature"),
    ("completion", {"prompt": "a", "temperature": 2.5}, 400, "temperature"),
    ("completion", {"prompt": "a", "temperature": "hot"}, 400, "temperature"),
    ("completion", {"prompt": "a", "top_p": 0}, 400, "top_p"),
    ("completion", {"prompt": "a", "top_p": 1.5}, 400, "top_p"),
    ("completion", {"prompt": "a", "max_tokens": 0}, 400, "max_tokens"),
    ("completion", {"prompt": "a", "max_tokens": -3}, 400, "max_tokens"),
    ("completion", {"prompt": "a", "max_tokens": 1.5}, 400, "max_tokens"),
    ("completion", {"prompt": "a", "max_tokens": 10 ** 30}, 400, "max_tokens"),
    ("completion", {"prompt": "a", "n": 2}, 400, "n"),
    ("completion", {"prompt": "a", "best_of": 3}, 400, "best_of"),
    ("completion", {"prompt": "a", "logprobs": 5}, 400, "logprobs"),
    ("completion", {"prompt": "a", "stop": ["a", "b", "c", "d", "e"]}, 400, "stop"),
    ("completion", {"prompt": "a", "stop": [""]}, 400, "stop"),
    ("completion", {"prompt": "a", "seed": "x"}, 400, "seed"),
    ("completion", {"prompt": "a", "stream": "yes"}, 400, "stream"),
    ("completion", {"prompt": "a", "presence_penalty": 0.5}, 400, "presence_penalty"),
    ("chat", {"messages": [{"role": "user", "content": "hi"}], "logprobs": True}, 400, "logprobs"),
    ("chat", {"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function"}]}, 400, "tools"),
    ("chat", {"messages": [{"role": "tool", "content": "42"}]}, 400, "messages[0].role"),
]


@pytest.mark.parametrize("endpoint,body,status,param", BAD, ids=[f"{i}" for i in range(len(BAD))])
def test_bad_requests_get_4xx_error_objects_and_the_server_keeps_serving(server, endpoint, body, status, param):
    path = "/v1/chat/completions" if endpoint == "chat" else "/v1/completions"
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = httpx.post(server.url + path, content=content, headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"], err
    assert err["param"] == param, err
    assert httpx.get(server.url + "/health", timeout=10).status_code == 200


def test_the_client_raises_on_error_objects_with_their_message(client):
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="stop 99 is outside the model"):
        client.completions.create(model=MODEL, prompt="a", extra_body={"layer_spec": "0:99"})
    with pytest.raises(openai.BadRequestError, match="context"):
        client.completions.create(model=MODEL, prompt="the end " * 300)
    assert complete(client, "Once upon a time", 8).choices[0].text == cli_run("Once upon a time", 8)


def test_http_level_errors(server):
    r = httpx.post(server.url + "/v1/completions", content=b'{"prompt": "' + b"a" * 70000 + b'"}', timeout=30)
    assert r.status_code == 413 and "limit" in r.json()["error"]["message"]
    r = httpx.get(server.url + "/v2/nothing", timeout=10)
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    assert httpx.get(server.url + "/v1/models/nope", timeout=10).status_code == 404


def test_metrics_count_requests_tokens_and_slots(server, client):
    before = server.metrics()
    complete(client, "Ben and Anna", 12, extra_body={"ignore_eos": True})
    httpx.post(server.url + "/v1/completions", content=b"{", timeout=10)
    after = server.metrics()
    assert after['strata_requests_total{status="200"}'] >= before.get('strata_requests_total{status="200"}', 0) + 1
    assert after['strata_requests_total{status="400"}'] >= before.get('strata_requests_total{status="400"}', 0) + 1
    assert after["strata_generated_tokens_total"] - before["strata_generated_tokens_total"] >= 12
    assert after["strata_prompt_tokens_total"] > before["strata_prompt_tokens_total"]
    assert after["strata_slots_total"] == 8 and after["strata_queue_depth"] == 0


# ---- slots, queue, keys, shutdown (servers of their own) ----------------------------------------------------

LONG = {"model": MODEL, "prompt": "Once upon a time", "max_tokens": 100000, "temperature": 0, "ignore_eos": True}


def test_a_client_that_disconnects_frees_its_slot_at_once():
    with StrataServer("--parallel", 1, "-c", 65536, "-t", 1) as s:
        busy = lambda m: m["strata_slots_busy"] == 1
        idle = lambda m: m["strata_slots_busy"] == 0
        # streamed: the client reads a little, then goes away
        with httpx.stream("POST", s.url + "/v1/completions", json={**LONG, "stream": True}, timeout=30) as r:
            lines = r.iter_lines()  # (dropping the iterator would close the connection)
            next(lines)
            s.wait_for(busy, what="the stream's slot taken")
        s.wait_for(idle, timeout=3, what="the slot freed after the stream's client left")
        # not streamed: the request is sent, the connection closed before any reply
        with socket.create_connection(("127.0.0.1", s.port)) as sock:
            body = json.dumps(LONG).encode()
            sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            s.wait_for(busy, what="the whole reply's slot taken")
        s.wait_for(idle, timeout=3, what="the slot freed after the waiting client left")
        assert complete(openai.OpenAI(base_url=s.url + "/v1", api_key="x"), "Hi", 4).choices[0].text is not None


def test_a_full_queue_answers_503_with_retry_after():
    with StrataServer("--parallel", 1, "--queue", 1, "-c", 65536, "-t", 1) as s:
        with httpx.Client(timeout=30) as a, httpx.Client(timeout=30) as b:
            with a.stream("POST", s.url + "/v1/completions", json={**LONG, "stream": True}) as first:
                lines = first.iter_lines()
                next(lines)
                s.wait_for(lambda m: m["strata_slots_busy"] == 1, what="the first request in the only slot")
                with b.stream("POST", s.url + "/v1/completions", json={**LONG, "stream": True}) as second:
                    s.wait_for(lambda m: m["strata_queue_depth"] == 1, what="the second request queued")
                    r = httpx.post(s.url + "/v1/completions", json={"prompt": "x", "max_tokens": 2}, timeout=30)
                    assert r.status_code == 503, r.text
                    assert r.headers["Retry-After"] == "1"
                    assert r.json()["error"]["code"] == "server_busy"
        s.wait_for(lambda m: m["strata_slots_busy"] == 0 and m["strata_queue_depth"] == 0, what="all freed")


def test_api_key():
    with StrataServer("--api-key", "sesame") as s:
        good = openai.OpenAI(base_url=s.url + "/v1", api_key="sesame", max_retries=0)
        bad = openai.OpenAI(base_url=s.url + "/v1", api_key="sesamf", max_retries=0)
        assert [m.id for m in good.models.list().data] == [MODEL]
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()
        with pytest.raises(openai.AuthenticationError):
            bad.completions.create(model=MODEL, prompt="a", max_tokens=2)
        r = httpx.post(s.url + "/v1/completions", json={"prompt": "a"}, timeout=10)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        assert httpx.get(s.url + "/health", timeout=10).status_code == 200  # for the balancer's checks
        assert good.completions.create(model=MODEL, prompt="a", max_tokens=2).choices
        # stories260K has no chat template and this server was given none: chat is refused, saying how to fix it
        with pytest.raises(openai.BadRequestError, match="--chat-template"):
            good.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])


def test_sigterm_lets_running_streams_finish_and_refuses_new_requests():
    s = StrataServer("--parallel", 2, "-c", 4096, "-t", 1).start()
    try:
        body = {"model": MODEL, "prompt": "Once upon a time", "max_tokens": 4000, "temperature": 0,
                "ignore_eos": True, "stream": True}
        with httpx.stream("POST", s.url + "/v1/completions", json=body, timeout=60) as r:
            stream = r.iter_lines()
            lines = [next(stream)]
            s.proc.send_signal(2)  # SIGINT, as Ctrl-C
            time.sleep(0.3)
            assert httpx.get(s.url + "/health", timeout=10).status_code == 503
            late = httpx.post(s.url + "/v1/completions", json={"prompt": "x", "max_tokens": 2}, timeout=10)
            assert late.status_code == 503 and late.headers["Retry-After"] == "1"
            lines += list(stream)
        events = [json.loads(x[6:]) for x in lines if x.startswith("data: {")]
        assert [x for x in lines if x][-1] == "data: [DONE]"
        assert events[-1]["choices"][0]["finish_reason"] == "length"
        assert s.proc.wait(timeout=30) == 0
    finally:
        if s.proc.poll() is None:
            s.proc.kill()
