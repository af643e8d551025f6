"""Two strata serve replicas behind HAProxy (deploy/haproxy.cfg, as it is), all on loopback with free ports: a
bounded batch of non-streaming requests through the balancer, one replica killed midway, and every request
still answered with its greedy text (the balancer retries what the dead replica was holding on the other)."""
import concurrent.futures
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import openai
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "server" / "tests"))
from strata_server import StrataServer  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
PROMPTS = [f"{start} {i}" for i, start in enumerate(["Once upon a time", "The little dog", "Lily wanted to",
                                                     "One day, Tim", "The sun was", "Mom said"] * 4)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("stop_signal", [signal.SIGKILL, signal.SIGTERM], ids=["killed", "stopped"])
def test_every_request_succeeds_while_a_replica_goes_away(stop_signal, tmp_path):
    if not shutil.which("haproxy"):
        pytest.skip("haproxy is not installed (apt-get install haproxy; .ci/setup does)")
    replicas = [StrataServer("--parallel", 4, "-c", 2048, "-t", 1).start() for _ in range(2)]
    lb = None
    try:
        env = dict(os.environ, STRATA_LB_PORT=str(free_port()), STRATA_R1_PORT=str(replicas[0].port),
                   STRATA_R2_PORT=str(replicas[1].port))
        lb = subprocess.Popen(["haproxy", "-f", str(HERE / "haproxy.cfg"), "-db"], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        url = f"http://127.0.0.1:{env['STRATA_LB_PORT']}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(url + "/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert lb.poll() is None and time.monotonic() < deadline, "haproxy did not come up"
            time.sleep(0.1)
        # The balancer retries; the client must not (a failure would otherwise be hidden).
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=120)
        direct = openai.OpenAI(base_url=replicas[1].url + "/v1", api_key="x", max_retries=0, timeout=120)
        args = dict(model="stories260K", max_tokens=1500, temperature=0, extra_body={"ignore_eos": True})
        expected = {p: direct.completions.create(prompt=p, **args).choices[0].text for p in PROMPTS}

        done = []
        lock = threading.Lock()

        def one(prompt):
            text = client.completions.create(prompt=prompt, **args).choices[0].text
            with lock:
                done.append(prompt)
            return prompt, text

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(one, p) for p in PROMPTS]
            while len(done) < len(PROMPTS) // 3:  # a third answered: the rest are queued or running
                time.sleep(0.01)
            # it goes away while it holds requests (and more are still to come)
            replicas[0].wait_for(lambda m: m["strata_slots_busy"] > 0, what="requests on the replica")
            replicas[0].proc.send_signal(stop_signal)
            answered_before = len(done)
            try:
                results = [f.result() for f in futures]  # raises if any request failed
            except Exception:
                lb.terminate()
                print("haproxy:\n" + lb.communicate(timeout=10)[0])
                raise
        assert answered_before < len(PROMPTS) - 6
        assert dict(results) == expected
        code = replicas[0].proc.wait(timeout=30)
        assert code == (-signal.SIGKILL if stop_signal == signal.SIGKILL else 0), "".join(replicas[0].log)
        # the balancer still answers, through the replica left
        assert client.completions.create(prompt=PROMPTS[0], **args).choices[0].text == expected[PROMPTS[0]]
    finally:
        if lb:
            lb.terminate()
            lb.wait(timeout=10)
        for r in replicas:
            if r.proc.poll() is None:
                r.stop()
