"""`strata serve` as the tests run it: on loopback, on a free port the server picks itself (--port 0, read back
from its "listening on" line), stopped by a signal, with its stderr kept for the failure messages."""
import os
import queue
import re
import signal
import subprocess
import threading
import time

import httpx


class StrataServer:
    def __init__(self, *args, model=None):
        self.argv = [os.environ["STRATA_BIN"], "serve", "-m", model or os.environ["STRATA_TEST_MODEL"],
                     "--host", "127.0.0.1", "--port", "0", *map(str, args)]
        self.proc = None
        self.port = None
        self.log = []  # stderr lines

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=60):
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        lines = queue.Queue()

        def read():
            for line in self.proc.stderr:
                self.log.append(line)
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + timeout
        while self.port is None:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                self.proc.kill()
                raise RuntimeError(f"strata serve did not start: {' '.join(self.argv)}\n{''.join(self.log)}")
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
        return self

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signals the server and waits for it to exit; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"strata serve did not stop within {timeout} s of {sig!r}\n{''.join(self.log)}")

    def metrics(self):
        """GET /metrics as {name or name{labels}: value}."""
        text = httpx.get(self.url + "/metrics", timeout=10).text
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def wait_for(self, predicate, timeout=10.0, what="condition"):
        """Polls /metrics until predicate(metrics) holds; returns the metrics."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.metrics()
            if predicate(m):
                return m
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {m}")
            time.sleep(0.05)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.stop()
