"""Rate limits of `edgellm serve` ([limits.key], [limits.address] in the config file) against a running
server: a burst past requests per second, generated tokens per minute charged when a reply ends, concurrent
requests per key, limits per client address without keys; 429 with Retry-After in each dialect (the `openai`
client raises RateLimitError), counted in /metrics, and new limits taken on SIGHUP."""

from __future__ import annotations

import http.client
import json
import signal
import time

import pytest

from conftest import SOURCE_DIR, run_cli
from edgellm_server import EdgellmServer

openai = pytest.importorskip("openai")

MODEL = SOURCE_DIR / "tests" / "models" / "qwen2-tiny"
ALIAS = "qwen2-tiny"


def config(tmp_path, limits: str, keys_file=None) -> str:
    path = tmp_path / "serve.toml"
    auth = f'[auth]\napi_keys_file = "{keys_file}"\n' if keys_file else ""
    path.write_text(f'[[model]]\npath = "{MODEL}"\n\n[engine]\nparallel = 2\nctx = 2048\n\n{auth}\n{limits}\n')
    return path


def new_key(keys_file, name):
    r = run_cli(["keys", "add", name, "--file", keys_file])
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def call(server, method, path, body=None, key=None, read=True):
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    conn.request(method, path, body=None if body is None else json.dumps(body).encode(), headers=headers)
    resp = conn.getresponse()
    if not read:
        return conn, resp
    data = resp.read()
    conn.close()
    return resp.status, dict(resp.getheaders()), data


def chat(max_tokens=4, **extra):
    return {"model": ALIAS, "messages": [{"role": "user", "content": "Hello"}], "max_tokens": max_tokens, **extra}


@pytest.fixture
def keys(tmp_path):
    keys_file = tmp_path / "keys.txt"
    return keys_file, new_key(keys_file, "kitchen"), new_key(keys_file, "garden")


def test_a_burst_past_requests_per_second_gets_429_with_retry_after(tmp_path, keys):
    keys_file, kitchen, garden = keys
    cfg = config(tmp_path, "[limits.key]\nrequests_per_second = 0.05\nburst = 3\n", keys_file)
    with EdgellmServer(["--config", cfg, "-t", "2"], api_key=garden) as srv:
        for _ in range(3):
            assert call(srv, "GET", "/v1/models", key=kitchen)[0] == 200
        status, headers, body = call(srv, "POST", "/v1/chat/completions", chat(), key=kitchen)
        assert status == 429
        assert int(headers["Retry-After"]) >= 19  # 1 / 0.05 s for the next request
        err = json.loads(body)["error"]
        assert err["type"] == "rate_limit_error" and err["code"] == "rate_limit_exceeded"
        assert "key 'kitchen' may send 0.05 requests per second (burst 3)" in err["message"]
        status, _, body = call(srv, "POST", "/api/chat", chat(), key=kitchen)
        assert status == 429 and "rate limit" in json.loads(body)["error"]
        client = openai.OpenAI(base_url=srv.url + "/v1", api_key=kitchen, max_retries=0)
        with pytest.raises(openai.RateLimitError):
            client.models.list()
        # Another key is not affected.
        assert call(srv, "POST", "/v1/chat/completions", chat(), key=garden)[0] == 200
        assert srv.metric("edgellm_rate_limited_total", scope="key", limit="requests") == 3
        # SIGHUP with a larger burst: a new limiter, full buckets.
        cfg.write_text(cfg.read_text().replace("burst = 3", "burst = 50"))
        srv.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while call(srv, "GET", "/v1/models", key=kitchen)[0] != 200:
            assert time.monotonic() < deadline, "\n".join(srv.stderr_lines)
            time.sleep(0.05)
        assert any("rate limits on" in line for line in srv.stderr_lines)


def test_generated_tokens_per_minute_are_charged_when_the_reply_ends(tmp_path, keys):
    keys_file, kitchen, garden = keys
    cfg = config(tmp_path, "[limits.key]\ntokens_per_minute = 20\n", keys_file)
    with EdgellmServer(["--config", cfg, "-t", "2"], api_key=garden) as srv:
        status, _, body = call(srv, "POST", "/v1/chat/completions", chat(30, ignore_eos=True), key=kitchen)
        assert status == 200
        assert json.loads(body)["usage"]["completion_tokens"] == 30  # never cut for the limit
        status, headers, body = call(srv, "POST", "/v1/chat/completions", chat(), key=kitchen)
        assert status == 429, body
        assert "has used its 20 generated tokens per minute" in json.loads(body)["error"]["message"]
        assert 25 <= int(headers["Retry-After"]) <= 31  # 10 tokens over, at 20 a minute
        assert srv.metric("edgellm_rate_limited_total", scope="key", limit="tokens") == 1
        assert call(srv, "POST", "/v1/chat/completions", chat(), key=garden)[0] == 200


def test_concurrent_requests_per_key(tmp_path, keys):
    keys_file, kitchen, garden = keys
    cfg = config(tmp_path, "[limits.key]\nconcurrent = 1\n", keys_file)
    with EdgellmServer(["--config", cfg, "-t", "2"], api_key=garden) as srv:
        # A long stream holds kitchen's one slot while it runs.
        conn, resp = call(srv, "POST", "/v1/chat/completions", chat(1500, ignore_eos=True, stream=True), key=kitchen,
                          read=False)
        assert resp.status == 200
        resp.readline()
        status, _, body = call(srv, "POST", "/v1/chat/completions", chat(), key=kitchen)
        assert status == 429
        assert "already has 1 requests running (at most 1 at once)" in json.loads(body)["error"]["message"]
        assert call(srv, "POST", "/v1/chat/completions", chat(), key=garden)[0] == 200
        resp.read()  # to its end
        conn.close()
        deadline = time.monotonic() + 10
        while call(srv, "POST", "/v1/chat/completions", chat(), key=kitchen)[0] != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_limits_per_address_without_keys(tmp_path):
    cfg = config(tmp_path, "[limits.address]\nrequests_per_second = 0.05\nburst = 2\n")
    with EdgellmServer(["--config", cfg, "-t", "2"]) as srv:
        assert call(srv, "GET", "/api/tags")[0] == 200
        assert call(srv, "GET", "/v1/models")[0] == 200
        status, headers, body = call(srv, "GET", "/api/tags")
        assert status == 429 and int(headers["Retry-After"]) >= 19
        assert "address 127.0.0.1 may send 0.05 requests per second" in json.loads(body)["error"]
        # /health and /metrics are not counted against it.
        assert call(srv, "GET", "/health")[0] == 200
        assert srv.metric("edgellm_rate_limited_total", scope="address", limit="requests") == 1
