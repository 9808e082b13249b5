"""Starts `edgellm serve` on a free loopback port for tests and benchmarks, and always stops it.

    with EdgellmServer(["-m", model, "--parallel", "4"]) as srv:
        srv.url          # http://127.0.0.1:PORT
        srv.get("/health")

The server binds port 0 (the OS picks a free one) and prints the port; `__enter__` waits until /health
answers 200. `__exit__` sends SIGTERM, waits for the graceful shutdown, and kills it if it has not
exited within the bound, so that no server outlives a failed test.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

from conftest import edgellm_bin


class EdgellmServer:
    def __init__(self, args, start_timeout: float = 120.0, env: dict | None = None, api_key: str | None = None,
                 preexec_fn=None):
        self.args = [str(a) for a in args]
        self.preexec_fn = preexec_fn  # run in the child before exec (resource limits)
        self.api_key = api_key  # sent by the helpers below (/health needs none)
        self.start_timeout = start_timeout
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.stderr_lines: list[str] = []
        self.exit_code: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "EdgellmServer":
        cmd = [str(edgellm_bin()), "serve", "--host", "127.0.0.1", "--port", "0"] + self.args
        env = dict(os.environ, **(self.env or {}))
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                                     preexec_fn=self.preexec_fn)
        # Read stderr on a thread: the port line first, then everything (kept for failure messages).
        port_found = threading.Event()

        def reader():
            for line in self.proc.stderr:
                self.stderr_lines.append(line.rstrip("\n"))
                m = re.search(r"listening on http://[^:]+:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                    port_found.set()
            port_found.set()

        self._reader = threading.Thread(target=reader, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + self.start_timeout
        port_found.wait(self.start_timeout)
        if not self.port:
            self._stop()
            raise RuntimeError("edgellm serve did not start:\n" + "\n".join(self.stderr_lines))
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("edgellm serve exited:\n" + "\n".join(self.stderr_lines))
            try:
                status, _ = self.get("/health", timeout=2)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self._stop()
        raise RuntimeError("edgellm serve was not ready in time:\n" + "\n".join(self.stderr_lines))

    def __exit__(self, *exc) -> None:
        self._stop()

    def _stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None:
                self.exit_code = self.proc.returncode
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.exit_code = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.exit_code = self.proc.wait()

    def kill(self) -> int:
        """SIGKILL (no graceful anything) and wait; returns the exit code."""
        self.proc.kill()
        self.exit_code = self.proc.wait(timeout=20)
        return self.exit_code

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM and wait; returns the exit code (or raises if it did not exit in time)."""
        self.proc.send_signal(signal.SIGTERM)
        self.exit_code = self.proc.wait(timeout=timeout)
        return self.exit_code

    # ---- plain HTTP helpers (no client library in between) ----
    def request(self, method: str, path: str, body=None, headers=None, timeout: float = 120):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
            if headers is None:
                headers = {"Content-Type": "application/json"}
                if self.api_key:
                    headers["Authorization"] = f"Bearer {self.api_key}"
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def get(self, path: str, timeout: float = 120):
        return self.request("GET", path, timeout=timeout)

    def post(self, path: str, body, timeout: float = 120):
        return self.request("POST", path, body, timeout=timeout)

    def metrics(self) -> str:
        status, body = self.get("/metrics")
        assert status == 200
        return body.decode()

    def metric(self, name: str, **labels) -> float:
        """The value of one sample of /metrics (0 if absent)."""
        want = ",".join(f'{k}="{v}"' for k, v in labels.items())
        for line in self.metrics().splitlines():
            if line.startswith("#"):
                continue
            key, _, value = line.rpartition(" ")
            sample_name, _, label_text = key.partition("{")
            if sample_name != name:
                continue
            if labels and not all(f'{k}="{v}"' in label_text for k, v in labels.items()):
                continue
            return float(value)
        return 0.0
