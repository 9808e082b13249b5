"""The conversation store of `edgellm serve --db FILE` against a running server, and `edgellm history`.

Every finished exchange is a row with its key name, client address, model, route, messages, reply, finish
reason, token counts and latencies, in both dialects, streamed or not. Durability: clients keep sending while
the server is killed with SIGKILL; every request whose response the client received in full is in the store.
A full disk (the server runs under a file-size limit, `ulimit -f`): requests still answer, the failed writes
are logged and counted in /metrics. `edgellm history list|show|export|prune` read it back with filters by
time, key and text, and refuse what is not a store with a clear message."""

from __future__ import annotations

import http.client
import json
import resource
import shutil
import signal
import subprocess
import threading
import time

import pytest

from conftest import SOURCE_DIR, run_cli
from edgellm_server import EdgellmServer

MODEL = SOURCE_DIR / "tests" / "models" / "qwen2-tiny"
ALIAS = "qwen2-tiny"


def add_key(keys_file, name: str) -> str:
    r = run_cli(["keys", "add", name, "--file", keys_file])
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def post(port: int, path: str, body: dict, key: str | None = None, timeout: float = 60):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    try:
        conn.request("POST", path, body=json.dumps(body).encode(), headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def sse_events(raw: bytes) -> list[dict]:
    events = []
    for line in raw.decode().splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            events.append(json.loads(line[6:]))
    return events


def export(db, *args) -> list[dict]:
    r = run_cli(["history", "export", "--db", db, *args])
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    d = tmp_path_factory.mktemp("store")
    keys_file = d / "keys.txt"
    kitchen = add_key(keys_file, "kitchen")
    garden = add_key(keys_file, "garden")
    return d, keys_file, kitchen, garden


def test_every_exchange_is_a_row_with_all_its_fields(keyed):
    d, keys_file, kitchen, garden = keyed
    db = d / "fields.db"
    with EdgellmServer(["-m", MODEL, "-t", "2", "--db", db, "--api-keys-file", keys_file], api_key=kitchen) as srv:
        msgs = [{"role": "user", "content": "Turn on the kitchen lights"}]
        status, raw = post(srv.port, "/v1/chat/completions",
                           {"model": ALIAS, "messages": msgs, "max_tokens": 8, "temperature": 0}, kitchen)
        assert status == 200
        chat = json.loads(raw)
        status, raw = post(srv.port, "/v1/chat/completions",
                           {"model": ALIAS, "messages": msgs, "max_tokens": 6, "temperature": 0, "stream": True,
                            "stream_options": {"include_usage": True}}, garden)
        assert status == 200
        events = sse_events(raw)
        streamed = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"])
        usage = [e["usage"] for e in events if e.get("usage")][0]
        status, raw = post(srv.port, "/v1/completions", {"model": ALIAS, "prompt": "The garden", "max_tokens": 5},
                           kitchen)
        assert status == 200
        completion = json.loads(raw)
        status, raw = post(srv.port, "/api/chat", {"model": ALIAS, "messages": msgs, "stream": False,
                                                   "options": {"num_predict": 4, "temperature": 0}}, garden)
        assert status == 200
        ollama_chat = json.loads(raw)
        status, raw = post(srv.port, "/api/generate", {"model": ALIAS, "prompt": "Is the door locked?",
                                                       "system": "You are a house.", "stream": True,
                                                       "options": {"num_predict": 4}}, kitchen)
        assert status == 200
        generated = "".join(json.loads(line).get("response", "") for line in raw.decode().splitlines())
        assert srv.metric("edgellm_store_writes_total", result="ok") == 5
        assert srv.metric("edgellm_store_writes_total", result="failed") == 0
        promtool = shutil.which("promtool")
        if promtool:  # scripts/setup.sh installs it (Debian's prometheus)
            r = subprocess.run([promtool, "check", "metrics"], input=srv.metrics(), capture_output=True, text=True,
                               timeout=60)
            assert r.returncode == 0, r.stdout + r.stderr

    rows = export(db)
    assert [r["route"] for r in rows] == ["/v1/chat/completions", "/v1/chat/completions", "/v1/completions",
                                          "/api/chat", "/api/generate"]
    first = rows[0]
    assert first["request_id"] == chat["id"] and first["key"] == "kitchen" and first["client"] == "127.0.0.1"
    assert first["model"] == ALIAS and first["messages"] == msgs
    assert first["reply"] == chat["choices"][0]["message"]["content"]
    assert first["finish_reason"] == chat["choices"][0]["finish_reason"]
    assert first["prompt_tokens"] == chat["usage"]["prompt_tokens"]
    assert first["generated_tokens"] == chat["usage"]["completion_tokens"]
    assert 0 < first["ttft_ms"] <= first["total_ms"]
    assert first["time"].endswith("Z") and first["time_ms"] > 1.7e12
    assert rows[1]["key"] == "garden" and rows[1]["reply"] == streamed
    assert rows[1]["generated_tokens"] == usage["completion_tokens"]
    assert rows[2]["messages"] == "The garden" and rows[2]["reply"] == completion["choices"][0]["text"]
    assert rows[3]["reply"] == ollama_chat["message"]["content"] and rows[3]["request_id"] == ""
    assert rows[4]["messages"] == [{"role": "system", "content": "You are a house."},
                                   {"role": "user", "content": "Is the door locked?"}]
    assert rows[4]["reply"] == generated

    # history: filters by key, text and time; show one in full; list.
    assert [r["route"] for r in export(db, "--key", "garden")] == ["/v1/chat/completions", "/api/chat"]
    assert [r["route"] for r in export(db, "--grep", "DOOR LOCKED")] == ["/api/generate"]
    assert len(export(db, "--since", "1h")) == 5 and export(db, "--until", "2000-01-01") == []
    assert len(export(db, "--limit", "2")) == 2
    r = run_cli(["history", "show", str(rows[4]["id"]), "--db", db])
    assert r.returncode == 0, r.stderr
    assert "[system]\nYou are a house." in r.stdout and "route     /api/generate" in r.stdout
    assert f"[reply]\n{generated}" in r.stdout
    r = run_cli(["history", "list", "--db", db, "--key", "kitchen"])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 4 and all(line.split()[3] == "kitchen" for line in lines[1:]), r.stdout
    assert "Turn on the kitchen lights →" in r.stdout and r.stderr.strip() == "3 exchanges"
    out = d / "export.jsonl"
    r = run_cli(["history", "export", "--db", db, "-o", out])
    assert r.returncode == 0 and len(out.read_text().splitlines()) == 5


def test_completed_responses_survive_sigkill(tmp_path):
    """Four clients send requests back to back (streamed and not) while the server is SIGKILLed; every request
    whose response arrived in full is in the store."""
    db = tmp_path / "kill.db"
    completed: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    with EdgellmServer(["-m", MODEL, "-t", "2", "--db", db, "--parallel", "4"]) as srv:
        def client(i: int):
            n = 0
            while not stop.is_set():
                n += 1
                stream = (i + n) % 2 == 0
                body = {"model": ALIAS, "messages": [{"role": "user", "content": f"client {i} request {n}"}],
                        "max_tokens": 4 + (n % 5), "stream": stream}
                try:
                    status, raw = post(srv.port, "/v1/chat/completions", body, timeout=30)
                except (OSError, http.client.HTTPException):
                    return  # the server was killed under this request
                if status != 200:
                    continue
                if stream:
                    if not raw.rstrip().endswith(b"data: [DONE]"):
                        continue  # cut off by the kill: not a completed response
                    request_id = sse_events(raw)[0]["id"]
                else:
                    request_id = json.loads(raw)["id"]
                with lock:
                    completed.append(request_id)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with lock:
                if len(completed) >= 24:
                    break
            time.sleep(0.02)
        srv.kill()
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert len(completed) >= 24
    stored = {r["request_id"] for r in export(db)}
    missing = [c for c in completed if c not in stored]
    assert not missing, f"{len(missing)} of {len(completed)} completed responses are not in the store: {missing[:5]}"


def test_a_full_disk_fails_the_write_not_the_request(tmp_path):
    """The server runs under a file-size limit (RLIMIT_FSIZE, 160 KiB): once the store's files reach it, writes
    fail. Every request still answers 200; the failures are logged and counted; the rows written before are
    intact."""
    db = tmp_path / "full.db"
    limit = 160 * 1024

    def limit_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # the server must ignore it itself

    with EdgellmServer(["-m", MODEL, "-t", "2", "--db", db], preexec_fn=limit_files) as srv:
        filler = "the heating schedule for every room of the house, " * 80  # ~4 KB per stored row
        statuses = []
        for i in range(80):
            status, raw = post(srv.port, "/v1/chat/completions",
                               {"model": ALIAS, "max_tokens": 2,
                                "messages": [{"role": "user", "content": f"{i}: {filler}"}]})
            statuses.append(status)
            if srv.metric("edgellm_store_writes_total", result="failed") >= 3:
                break
        assert set(statuses) == {200}, statuses
        failed = srv.metric("edgellm_store_writes_total", result="failed")
        written = srv.metric("edgellm_store_writes_total", result="ok")
        assert failed >= 3 and written >= 5, (written, failed)
        status, _ = srv.get("/health")
        assert status == 200
        srv.stop()
    assert any("not saved" in line for line in srv.stderr_lines), "\n".join(srv.stderr_lines[-20:])
    rows = export(db)
    assert len(rows) == written
    assert [int(r["messages"][0]["content"].split(":")[0]) for r in rows] == list(range(len(rows)))


def test_history_prune_and_bad_input(tmp_path):
    db = tmp_path / "prune.db"
    with EdgellmServer(["-m", MODEL, "-t", "2", "--db", db]) as srv:
        big = "the lights " * 400  # 4400 characters, ~800 tokens
        for i in range(30):
            status, _ = post(srv.port, "/v1/completions", {"model": ALIAS, "prompt": f"{i} {big}", "max_tokens": 1})
            assert status == 200
        # prune beside the running server (WAL: it waits for its turn).
        r = run_cli(["history", "prune", "--db", db, "--max-mb", "0.25"])
        assert r.returncode != 0  # a whole number of MiB
        r = run_cli(["history", "prune", "--db", db, "--older-than", "1h"])
        assert r.returncode == 0 and "deleted 0 exchanges older" in r.stdout, r.stdout + r.stderr
        r = run_cli(["history", "prune", "--db", db, "--max-mb", "1"])
        assert r.returncode == 0, r.stderr
        # 30 rows of ~4.4 KB of prompt (~130 KB) fit in 1 MiB: nothing deleted.
        assert "and 0 for size" in r.stdout, r.stdout
        status, _ = post(srv.port, "/v1/completions", {"model": ALIAS, "prompt": "after", "max_tokens": 1})
        assert status == 200
    assert len(export(db)) == 31
    r = run_cli(["history", "prune", "--db", db, "--older-than", "0s"])
    assert r.returncode == 0 and "deleted 31 exchanges" in r.stdout, r.stdout
    assert export(db) == []

    not_db = tmp_path / "notes.txt"
    not_db.write_text("hello " * 100)
    r = run_cli(["history", "list", "--db", not_db])
    assert r.returncode == 1 and "notes.txt: not an SQLite database" in r.stderr, r.stderr
    r = run_cli(["history", "list", "--db", db, "--since", "yesterday"])
    assert r.returncode == 1 and "--since 'yesterday' is not a time" in r.stderr, r.stderr
    r = run_cli(["history", "show", "999", "--db", db])
    assert r.returncode == 1 and "has no exchange 999" in r.stderr, r.stderr
    r = run_cli(["history", "prune", "--db", db])
    assert r.returncode == 1 and "--older-than and/or --max-mb" in r.stderr
    r = run_cli(["serve", "-m", MODEL, "--db", not_db, "--port", "0"])
    assert r.returncode == 1 and "not an SQLite database" in r.stderr, r.stderr


def test_an_abandoned_stream_is_saved_as_cancelled(tmp_path):
    db = tmp_path / "cancel.db"
    with EdgellmServer(["-m", MODEL, "-t", "2", "--db", db]) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        conn.request("POST", "/v1/chat/completions", headers={"Content-Type": "application/json"},
                     body=json.dumps({"model": ALIAS, "messages": [{"role": "user", "content": "a long story"}],
                                      "max_tokens": 4000, "ignore_eos": True, "stream": True}).encode())
        resp = conn.getresponse()
        assert resp.status == 200
        first = resp.readline()
        assert first.startswith(b"data: ")
        conn.close()  # the client goes away mid-stream
        deadline = time.monotonic() + 20
        while srv.metric("edgellm_store_writes_total", result="ok") < 1:
            assert time.monotonic() < deadline, "\n".join(srv.stderr_lines)
            time.sleep(0.05)
    rows = export(db)
    assert len(rows) == 1 and rows[0]["finish_reason"] == "cancelled", rows
    assert 0 < rows[0]["generated_tokens"] < 4000


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_server_with_a_store_stops_gracefully(tmp_path, sig):
    """The store's writer thread starts before the server's: it must not take SIGTERM or SIGINT with their
    default action (the process would die without ending its streams)."""
    db = tmp_path / "signals.db"
    with EdgellmServer(["-m", MODEL, "-t", "2", "--db", db]) as srv:
        status, _ = post(srv.port, "/v1/completions", {"model": ALIAS, "prompt": "The lights", "max_tokens": 3})
        assert status == 200
        srv.proc.send_signal(sig)
        assert srv.proc.wait(timeout=30) == 0, "\n".join(srv.stderr_lines)
        deadline = time.monotonic() + 5
        while not any("finishing the running requests" in line for line in srv.stderr_lines):
            assert time.monotonic() < deadline, "\n".join(srv.stderr_lines)
            time.sleep(0.05)
    assert len(export(db)) == 1
