"""API keys and the configuration file of `edgellm serve`, against a running server and real clients.

Keys come from `edgellm keys add` (the file keeps hashes only) and from the TOML config's [[auth.key]];
requests without a key or with a wrong one get 401 in each dialect's error shape (the `openai` client raises
AuthenticationError, the `ollama` client a ResponseError); the right key works, its name labels the metrics;
SIGHUP takes a new keys file without dropping a running stream and keeps the old keys when the new file is
bad; the server refuses to listen beyond loopback without keys unless --insecure; `--check-config` names
each error's line."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest

from conftest import SOURCE_DIR, edgellm_bin, run_cli
from edgellm_server import EdgellmServer

openai = pytest.importorskip("openai")
ollama = pytest.importorskip("ollama")

MODEL = SOURCE_DIR / "tests" / "models" / "qwen2-tiny"
ALIAS = "qwen2-tiny"


def add_key(keys_file, name: str) -> str:
    r = run_cli(["keys", "add", name, "--file", keys_file])
    assert r.returncode == 0, r.stderr
    key = r.stdout.strip()
    assert key.startswith("sk-edgellm-") and key not in keys_file.read_text()
    return key


def hash_of(keys_file, name: str) -> str:
    for line in keys_file.read_text().splitlines():
        if line.split()[0] == name:
            return line.split()[1]
    raise KeyError(name)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("auth")
    keys_file = d / "keys.txt"
    kitchen = add_key(keys_file, "kitchen")
    # A second key given only as a hash in the config file.
    other = d / "other.txt"
    garden = add_key(other, "garden")
    config = d / "serve.toml"
    config.write_text(f"""# the household's board
[[model]]
path = "{MODEL}"

[engine]
parallel = 1
ctx = 512

[auth]
api_keys_file = "{keys_file}"
[[auth.key]]
name = "garden"
hash = "{hash_of(other, 'garden')}"
""")
    return {"dir": d, "file": keys_file, "config": config, "kitchen": kitchen, "garden": garden}


@pytest.fixture(scope="module")
def server(keys):
    # The command line overrides the config's [engine] parallel = 1.
    with EdgellmServer(["--config", keys["config"], "--parallel", "2", "-t", "2"], api_key=keys["kitchen"]) as srv:
        yield srv


def raw(server, method, path, body=None, key=None):
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body).encode(), headers=headers)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


CHAT = {"model": ALIAS, "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 4, "stream": False}


def test_missing_and_wrong_keys_get_401_in_each_dialect(server, keys):
    before = server.metric("edgellm_auth_failures_total", reason="missing")
    for key in (None, "sk-edgellm-wrong", keys["kitchen"] + "x", ""):
        status, headers, body = raw(server, "POST", "/v1/chat/completions", CHAT, key)
        assert status == 401, body
        assert headers.get("WWW-Authenticate") == "Bearer"
        err = json.loads(body)["error"]
        assert err["code"] == "invalid_api_key" and err["type"] == "invalid_request_error"
        assert "API key" in err["message"]
        status, _, body = raw(server, "POST", "/api/chat", CHAT, key)
        assert status == 401 and isinstance(json.loads(body)["error"], str)
        # Even the model lists and /metrics.
        assert raw(server, "GET", "/v1/models", None, key)[0] == 401
        assert raw(server, "GET", "/api/tags", None, key)[0] == 401
        assert raw(server, "GET", "/metrics", None, key)[0] == 401
    assert server.metric("edgellm_auth_failures_total", reason="missing") >= before + 10
    assert server.metric("edgellm_auth_failures_total", reason="invalid") >= 10
    # /health is for load balancers: no key.
    assert raw(server, "GET", "/health")[0] == 200


def test_real_clients_with_and_without_their_key(server, keys):
    good = openai.OpenAI(base_url=server.url + "/v1", api_key=keys["kitchen"], max_retries=0)
    r = good.chat.completions.create(model=ALIAS, messages=[{"role": "user", "content": "Hi"}], max_tokens=3)
    assert r.choices[0].finish_reason in ("stop", "length")
    bad = openai.OpenAI(base_url=server.url + "/v1", api_key="sk-not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model=ALIAS, messages=[{"role": "user", "content": "Hi"}], max_tokens=3)
    # Ollama's client sends Authorization: Bearer from OLLAMA_API_KEY (or explicit headers).
    o = ollama.Client(host=server.url, headers={"Authorization": f"Bearer {keys['garden']}"})
    reply = o.chat(model=ALIAS, messages=[{"role": "user", "content": "Hi"}], options={"num_predict": 3})
    assert reply.message.role == "assistant"
    with pytest.raises(ollama.ResponseError) as e:
        ollama.Client(host=server.url).chat(model=ALIAS, messages=[{"role": "user", "content": "Hi"}])
    assert e.value.status_code == 401
    # Each key's requests carry its name.
    assert server.metric("edgellm_requests_total", route="/v1/chat/completions", status="200", key="kitchen") >= 1
    assert server.metric("edgellm_requests_total", route="/api/chat", status="200", key="garden") >= 1
    assert "(loading 1 model; 2 API keys)" in "\n".join(server.stderr_lines)
    # The key label keeps the exposition valid.
    if shutil.which("promtool"):
        r = subprocess.run(["promtool", "check", "metrics"], input=server.metrics(), capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr


def test_sighup_reloads_keys_without_dropping_a_stream_and_keeps_them_on_a_bad_file(server, keys):
    new_key = add_key(keys["file"], "hallway")
    assert raw(server, "GET", "/v1/models", None, new_key)[0] == 401  # not yet loaded
    # A long stream is running while the server reloads.
    chunks: list[bytes] = []

    def stream():
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        conn.request("POST", "/v1/chat/completions",
                     body=json.dumps({**CHAT, "stream": True, "max_tokens": 64}).encode(),
                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {keys['kitchen']}"})
        resp = conn.getresponse()
        assert resp.status == 200
        chunks.append(resp.read())
        conn.close()

    t = threading.Thread(target=stream)
    t.start()
    time.sleep(0.2)
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while raw(server, "GET", "/v1/models", None, new_key)[0] != 200:
        assert time.monotonic() < deadline, "\n".join(server.stderr_lines)
        time.sleep(0.05)
    t.join(120)
    assert chunks and chunks[0].rstrip().endswith(b"data: [DONE]"), chunks
    # A broken keys file: the old keys stay.
    good_text = keys["file"].read_text()
    keys["file"].write_text(good_text + "porch sk-edgellm-a-key-not-its-hash\n")
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while not any("keeping the old one" in l for l in server.stderr_lines):
        assert time.monotonic() < deadline, "\n".join(server.stderr_lines)
        time.sleep(0.05)
    assert any(re.search(r"keys\.txt:\d+: the hash of key 'porch'", l) for l in server.stderr_lines)
    assert raw(server, "GET", "/v1/models", None, new_key)[0] == 200
    assert raw(server, "GET", "/v1/models", None, keys["kitchen"])[0] == 200
    keys["file"].write_text(good_text)


def test_no_keys_beyond_loopback_unless_insecure(keys):
    r = subprocess.run([str(edgellm_bin()), "serve", "-m", MODEL, "--host", "0.0.0.0", "--port", "0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "without API keys" in r.stderr and "--insecure" in r.stderr
    # With keys it starts (and is stopped at once).
    proc = subprocess.Popen([str(edgellm_bin()), "serve", "-m", MODEL, "--host", "0.0.0.0", "--port", "0",
                             "--api-keys-file", keys["file"]], stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert "listening on http://0.0.0.0:" in line and "API key" in line
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    proc = subprocess.Popen([str(edgellm_bin()), "serve", "-m", MODEL, "--host", "0.0.0.0", "--port", "0",
                             "--insecure"], stderr=subprocess.PIPE, text=True)
    try:
        assert "(loading 1 model; no API keys)" in proc.stderr.readline()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def test_check_config_explains_each_error_with_its_line(keys):
    r = run_cli(["serve", "--check-config", keys["config"]])
    assert r.returncode == 0, r.stderr
    assert re.search(r"OK: 1 model on 127\.0\.0\.1:8080, [23] API keys$", r.stdout.strip()), r.stdout  # + hallway
    bad = keys["dir"] / "bad.toml"
    bad.write_text('[server]\nhost = "0.0.0.0"\nport = "80"\n\n[engine]\nparalel = 4\nkv_type = "q4_0"\n')
    r = run_cli(["serve", "--check-config", bad])
    assert r.returncode == 1
    assert f"{bad}:3:8: [server] port must be a whole number" in r.stderr
    assert f"{bad}:6:1: unknown setting 'paralel' in [engine]" in r.stderr
    assert f"{bad}:7:11: [engine] kv_type must be" in r.stderr
    # A file that parses but cannot run: no model, and beyond loopback without keys.
    bad.write_text('[server]\nhost = "0.0.0.0"\n')
    r = run_cli(["serve", "--check-config", bad])
    assert r.returncode == 1
    assert "no model to serve" in r.stderr and "--insecure" in r.stderr
    # The command line's overrides count: a model and --insecure make it valid.
    r = run_cli(["serve", "--check-config", bad, "-m", MODEL, "--insecure"])
    assert r.returncode == 0, r.stderr
    assert "(no authentication)" in r.stdout
