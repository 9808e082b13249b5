"""A fleet behind nginx (docs/deploy.md): three `edgellm serve` processes and Debian's nginx on loopback, with
the proxy settings of deploy/nginx/edgellm-proxy.conf as committed and the upstream of
deploy/nginx/edgellm-fleet.conf (least_conn, passive health checks). Clients send load through nginx, one
server is killed (SIGKILL) mid-run: every request is either answered in full (retried on another server
where it had not started answering) or cleanly failed (a 5xx, or a stream cut without its final event) —
none hangs; after the kill the other two answer everything; the boards see the clients' address through
X-Forwarded-For (--trusted-proxy)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from contextlib import ExitStack

import pytest

from conftest import SOURCE_DIR, run_cli
from edgellm_server import EdgellmServer

MODEL = SOURCE_DIR / "tests" / "models" / "qwen2-tiny"
ALIAS = "qwen2-tiny"
PROXY_CONF = SOURCE_DIR / "deploy" / "nginx" / "edgellm-proxy.conf"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (scripts/setup.sh installs nginx-light)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def upstream_block(ports: list[int]) -> str:
    """The fleet file's upstream, with the test's servers in place of the boards."""
    text = (SOURCE_DIR / "deploy" / "nginx" / "edgellm-fleet.conf").read_text()
    start = text.index("upstream edgellm_fleet {")
    block = text[start: text.index("}", start) + 1]
    lines = [l for l in block.splitlines() if not l.strip().startswith("server ")]
    servers = [f"    server 127.0.0.1:{p} max_fails=2 fail_timeout=10s;" for p in ports]
    return "\n".join(lines[:-1] + servers + [lines[-1]])


class Nginx:
    def __init__(self, workdir, ports: list[int]):
        self.dir = workdir
        self.port = free_port()
        (workdir / "logs").mkdir()
        user = "user root;\n" if os.geteuid() == 0 else ""
        (workdir / "nginx.conf").write_text(f"""{user}worker_processes 1;
error_log {workdir}/logs/error.log warn;
pid {workdir}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log {workdir}/logs/access.log;
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
{upstream_block(ports)}
    server {{
        listen 127.0.0.1:{self.port};
        location / {{
            proxy_pass http://edgellm_fleet;
            include {PROXY_CONF};
        }}
    }}
}}
""")

    def __enter__(self):
        r = subprocess.run([NGINX, "-t", "-p", str(self.dir), "-c", str(self.dir / "nginx.conf")],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        self.proc = subprocess.Popen([NGINX, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"), "-g",
                                      "daemon off;"], stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                assert self.proc.poll() is None and time.monotonic() < deadline, self.proc.stderr.read()
                time.sleep(0.05)

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def one_request(port: int, n: int) -> str:
    """Sends one generation request through nginx; returns "answered", or why it failed cleanly. A hang would
    be the socket timeout, which fails the test."""
    stream = n % 2 == 0
    body = {"model": ALIAS, "messages": [{"role": "user", "content": f"request {n}: turn on the lights"}],
            "max_tokens": 150 + n % 100, "ignore_eos": True, "stream": stream}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/v1/chat/completions", body=json.dumps(body).encode(),
                     headers={"Content-Type": "application/json", "X-Forwarded-For": "10.1.2.3"})
        resp = conn.getresponse()
        if resp.status != 200:
            resp.read()
            return f"status {resp.status}"
        try:
            raw = resp.read()
        except http.client.IncompleteRead:
            return "stream cut"
        if stream:
            return "answered" if raw.rstrip().endswith(b"data: [DONE]") else "stream cut"
        json.loads(raw)["choices"][0]["message"]["content"]
        return "answered"
    except (ConnectionError, http.client.RemoteDisconnected) as e:
        return f"connection {type(e).__name__}"
    finally:
        conn.close()


def test_nginx_fails_over_when_a_server_dies(tmp_path):
    with ExitStack() as stack:
        db = tmp_path / "board0.db"
        args = ["-m", MODEL, "-t", "1", "--parallel", "4", "--trusted-proxy", "127.0.0.1"]
        servers = [stack.enter_context(EdgellmServer(args + (["--db", db] if i == 0 else []))) for i in range(3)]
        nginx = stack.enter_context(Nginx(tmp_path, [s.port for s in servers]))
        results: dict[int, tuple[float, float, str]] = {}
        lock = threading.Lock()
        counter = iter(range(10**6))
        stop = threading.Event()

        def client():
            while not stop.is_set():
                with lock:
                    n = next(counter)
                started = time.monotonic()
                outcome = one_request(nginx.port, n)
                with lock:
                    results[n] = (started, time.monotonic(), outcome)

        threads = [threading.Thread(target=client) for _ in range(6)]
        for t in threads:
            t.start()
        time.sleep(3)
        victim = servers[1]
        served_before = victim.metric("edgellm_requests_total", route="/v1/chat/completions", status="200")
        killed_at = time.monotonic()
        victim.kill()
        time.sleep(4)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads), "a request hung"

        outcomes = [r[2] for r in results.values()]
        failed = {n: r for n, r in results.items() if r[2] != "answered"}
        # Only requests in flight at the kill may fail, and only cleanly (a 502 or a cut stream).
        for n, (started, ended, outcome) in failed.items():
            assert started <= killed_at + 0.5, (n, outcome)
            assert outcome in ("status 502", "stream cut"), (n, outcome)
        after = [r for r in results.values() if r[0] > killed_at + 0.5]
        assert after and all(r[2] == "answered" for r in after)
        assert outcomes.count("answered") >= 0.9 * len(outcomes), outcomes
        assert len(outcomes) >= 30
        # least_conn spread the load over all three before the kill.
        assert served_before >= 2
        for s in (servers[0], servers[2]):
            assert s.metric("edgellm_requests_total", route="/v1/chat/completions", status="200") >= 2
    # The boards saw the client's address from X-Forwarded-For (nginx appended its own: trusted, skipped).
    r = run_cli(["history", "export", "--db", db])
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert rows and {row["client"] for row in rows} == {"10.1.2.3"}, r.stderr
