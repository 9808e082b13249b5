"""`edgellm serve` driven by real clients: the official `openai` and `ollama` Python packages, raw HTTP
for the SSE and NDJSON framing and for bad input, `promtool check metrics` on a scrape, a client that
goes away mid-stream, rapid connect/close cycles, and a graceful shutdown on SIGTERM.

The model is the trained qwen2-tiny fixture (its real chat template), served from loopback on a port the
OS picks; every server is stopped when its test ends, whatever happened."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import SOURCE_DIR, run_cli
from edgellm_server import EdgellmServer

openai = pytest.importorskip("openai")
ollama = pytest.importorskip("ollama")

MODEL = SOURCE_DIR / "tests" / "models" / "qwen2-tiny"
ALIAS = "qwen2-tiny"


@pytest.fixture(scope="module")
def fake_board(tmp_path_factory) -> Path:
    """A /sys tree with what an RK3576 board reports: two thermal zones, CPU frequencies, the NPU's load."""
    root = tmp_path_factory.mktemp("board")
    files = {
        "sys/class/thermal/thermal_zone0/temp": "47250", "sys/class/thermal/thermal_zone0/type": "soc-thermal",
        "sys/class/thermal/thermal_zone1/temp": "44100", "sys/class/thermal/thermal_zone1/type": "bigcore0-thermal",
        "sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq": "1416000",
        "sys/devices/system/cpu/cpu4/cpufreq/scaling_cur_freq": "2208000",
        "sys/kernel/debug/rknpu/load": "NPU load:  Core0: 37%, Core1:  0%,",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text + "\n")
    return root


@pytest.fixture(scope="module")
def server(fake_board):
    with EdgellmServer(["-m", MODEL, "--parallel", "4", "--ctx", "640", "--max-body", "65536", "-t", "2"],
                       env={"EDGELLM_SYSFS_ROOT": str(fake_board)}) as srv:
        yield srv


@pytest.fixture(scope="module")
def oai(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=120)


def greedy_run(prompt: str, n: int) -> str:
    """What `edgellm run` answers with greedy sampling (the same template and model)."""
    r = run_cli(["run", "-m", MODEL, "-p", prompt, "--preset", "greedy", "-n", n, "-c", "256"], activations="int8")
    assert r.returncode == 0, r.stderr
    return r.stdout.rstrip("\n")


# ---- OpenAI ----

def test_openai_chat_equals_the_cli_and_reports_usage(oai):
    r = oai.chat.completions.create(model=ALIAS, messages=[{"role": "user", "content": "Hello"}], max_tokens=12,
                                    temperature=0)
    choice = r.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == greedy_run("Hello", 12)
    assert choice.finish_reason in ("length", "stop")
    assert r.model == ALIAS and r.object == "chat.completion" and r.id.startswith("chatcmpl-")
    assert r.usage.completion_tokens <= 12 and r.usage.prompt_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    # The same prompt again: its blocks come from the prefix cache.
    again = oai.chat.completions.create(model=ALIAS, messages=[{"role": "user", "content": "Hello"}], max_tokens=12,
                                        temperature=0)
    assert again.choices[0].message.content == choice.message.content
    assert again.usage.prompt_tokens_details.cached_tokens >= 16


def test_openai_streaming_chat_matches_the_whole_answer(oai):
    kwargs = dict(model=ALIAS, messages=[{"role": "system", "content": "Be brief."},
                                         {"role": "user", "content": "Tell me about the city"}],
                  max_tokens=20, temperature=0)
    whole = oai.chat.completions.create(**kwargs)
    chunks = list(oai.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason == whole.choices[0].finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)


TOOLS = [{"type": "function", "function": {"name": "turn_on", "description": "Switch a light on",
                                           "parameters": {"type": "object", "properties": {"light": {"type": "string"}},
                                                          "required": ["light"]}}}]


def test_tools_and_tool_results_reach_the_models_template(oai, server):
    """Tools, an earlier call (OpenAI's JSON-text arguments) and its result render as transformers renders them:
    the prompt has exactly the tokens of transformers' apply_chat_template with the fixture's own template."""
    transformers = pytest.importorskip("transformers")
    messages = [{"role": "user", "content": "Light the hall"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "c0", "type": "function", "function": {"name": "turn_on", "arguments": '{"light": "hall"}'}}]},
                {"role": "tool", "tool_call_id": "c0", "content": "done"},
                {"role": "user", "content": "Thanks"}]
    r = oai.chat.completions.create(model=ALIAS, messages=messages, tools=TOOLS, max_tokens=3, temperature=0)
    reference = [dict(m) for m in messages]
    reference[1] = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c0", "type": "function", "function": {"name": "turn_on", "arguments": {"light": "hall"}}}]}
    tok = transformers.AutoTokenizer.from_pretrained(str(MODEL))
    text = tok.apply_chat_template(reference, tools=TOOLS, tokenize=False, add_generation_prompt=True)
    assert r.usage.prompt_tokens == len(tok.encode(text, add_special_tokens=False))
    assert r.choices[0].finish_reason in ("stop", "length", "tool_calls")
    # Streamed with tools: the same answer; 'none' shows the tools but does not read the reply for calls.
    chunks = list(oai.chat.completions.create(model=ALIAS, messages=messages, tools=TOOLS, max_tokens=3,
                                              temperature=0, stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == (r.choices[0].message.content or "")
    none = oai.chat.completions.create(model=ALIAS, messages=messages, tools=TOOLS, tool_choice="none", max_tokens=3,
                                       temperature=0)
    assert none.usage.prompt_tokens == r.usage.prompt_tokens
    # (Forced calls: test_structured_output.py.) A named function that is not a tool, or a bad tool definition,
    # is a 400 naming its field.
    with pytest.raises(openai.BadRequestError) as e:
        oai.chat.completions.create(model=ALIAS, messages=messages, tools=TOOLS, max_tokens=3,
                                    tool_choice={"type": "function", "function": {"name": "turn_off"}})
    assert e.value.body["param"] == "tool_choice" and "not among 'tools'" in e.value.body["message"]
    with pytest.raises(openai.BadRequestError) as e:
        oai.chat.completions.create(model=ALIAS, messages=messages, tools=[{"type": "function", "function": {}}])
    assert e.value.body["param"] == "tools[0].function.name"
    # Ollama: tools and a tool result in /api/chat.
    client = ollama.Client(host=server.url)
    reply = client.chat(model=ALIAS, messages=[{"role": "user", "content": "Light the hall"},
                                               {"role": "assistant", "content": "", "tool_calls": [
                                                   {"function": {"name": "turn_on", "arguments": {"light": "hall"}}}]},
                                               {"role": "tool", "content": "done", "tool_name": "turn_on"}],
                        tools=TOOLS, options={"num_predict": 3, "temperature": 0})
    assert reply.message.role == "assistant" and reply.done


def test_openai_completions_stream_and_whole(oai):
    whole = oai.completions.create(model=ALIAS, prompt="The film was released in", max_tokens=10, temperature=0)
    assert whole.object == "text_completion" and whole.choices[0].text
    parts = list(oai.completions.create(model=ALIAS, prompt="The film was released in", max_tokens=10,
                                        temperature=0, stream=True))
    assert "".join(p.choices[0].text for p in parts if p.choices) == whole.choices[0].text
    # Token ids as the prompt, and the legacy logprobs.
    ids = [51, 262, 1688, 425, 3043, 316]
    r = oai.completions.create(model=ALIAS, prompt=ids, max_tokens=4, temperature=0, logprobs=2)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == r.usage.completion_tokens
    assert all(len(t) <= 2 for t in lp.top_logprobs) and all(v <= 0 for v in lp.token_logprobs)
    assert r.usage.prompt_tokens == len(ids)


def test_openai_models(oai):
    models = oai.models.list()
    assert [m.id for m in models.data] == [ALIAS]
    assert oai.models.retrieve(ALIAS).id == ALIAS
    with pytest.raises(openai.NotFoundError):
        oai.models.retrieve("nope")


def test_openai_logprobs_seed_and_stop(oai):
    r = oai.chat.completions.create(model=ALIAS, messages=[{"role": "user", "content": "Hello"}], max_tokens=6,
                                    temperature=0, logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens
    for item in content:
        assert len(item.top_logprobs) == 3 and item.logprob <= 0
        assert item.top_logprobs[0].logprob >= item.top_logprobs[-1].logprob
        assert abs(item.logprob - item.top_logprobs[0].logprob) < 1e-5  # greedy took the most likely
    assert bytes(b for item in content for b in item.bytes).decode("utf-8", "replace") == r.choices[0].message.content
    # The same seed, the same sampled answer; the stream and the whole answer agree.
    kw = dict(model=ALIAS, messages=[{"role": "user", "content": "Tell me a story"}], max_tokens=16, temperature=1.0,
              seed=42)
    a = oai.chat.completions.create(**kw).choices[0].message.content
    b = oai.chat.completions.create(**kw).choices[0].message.content
    assert a == b
    # A stop string ends the answer before it.
    full = oai.chat.completions.create(model=ALIAS, messages=[{"role": "user", "content": "Hello"}], max_tokens=12,
                                       temperature=0).choices[0].message.content
    stop = full[3:6]
    cut = oai.chat.completions.create(model=ALIAS, messages=[{"role": "user", "content": "Hello"}], max_tokens=12,
                                      temperature=0, stop=[stop])
    assert cut.choices[0].finish_reason == "stop" and cut.choices[0].message.content == full[:full.index(stop)]


def test_openai_errors_name_the_field(oai, server):
    with pytest.raises(openai.BadRequestError, match="'n' must be 1"):
        oai.chat.completions.create(model=ALIAS, messages=[{"role": "user", "content": "x"}], n=2)
    with pytest.raises(openai.BadRequestError, match="'max_tokens' must be at least 1, got 0"):
        oai.chat.completions.create(model=ALIAS, messages=[{"role": "user", "content": "x"}], max_tokens=0)
    with pytest.raises(openai.NotFoundError, match="'gpt-4' does not exist"):
        oai.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "x"}])
    # The prompt longer than the context (640): 400 naming both numbers.
    with pytest.raises(openai.BadRequestError, match=r"the prompt has \d+ tokens; the context holds 640") as e:
        oai.chat.completions.create(model=ALIAS, messages=[{"role": "user", "content": "word " * 1000}])
    assert e.value.body["code"] == "context_length_exceeded"

    def raw(body, want_status, needle, content_type="application/json"):
        status, data = server.request("POST", "/v1/chat/completions", body, {"Content-Type": content_type})
        assert status == want_status, (status, data)
        err = json.loads(data)["error"]
        assert needle in err["message"], err
        return err

    raw(b'{"model": "qwen2-tiny", "messages": [', 400, "not valid JSON")
    raw(b'\xff\xfe{"messages": []}', 400, "not valid JSON")
    raw(b'{"messages": [{"role": "user", "content": "caf\xe9"}]}', 400, "UTF-8")
    raw(b'[1, 2]', 400, "must be a JSON object")
    err = raw({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, 400, "'temperature' must be a number")
    assert err["param"] == "temperature" and err["type"] == "invalid_request_error"
    raw({"messages": [{"role": "user", "content": "x"}], "temperature": 3}, 400, "between 0 and 2, got 3")
    raw({"model": ALIAS}, 400, "'messages' is required")
    raw({"messages": "hello"}, 400, "'messages' must be an array")
    raw({"messages": [{"role": "user", "content": ""}]}, 400, "'messages[0].content' is empty")
    raw({"messages": [{"role": "wizard", "content": "x"}]}, 400, "'messages[0].role' must be")
    raw({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, 400,
        "content part type 'image_url' is not supported")
    raw({"messages": [{"role": "user", "content": "x"}], "stop": [1]}, 400, "'stop[0]' must be a string")
    raw({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2}, 400, "needs 'logprobs'")
    status, data = server.request("POST", "/v1/chat/completions", b"x" * 70000)
    assert status == 413 and "limit of 65536 bytes" in json.loads(data)["error"]["message"]
    status, data = server.get("/v1/nothing")
    assert status == 404 and "no route" in json.loads(data)["error"]["message"]
    # Unknown fields are ignored, as OpenAI does; the server still serves after all of the above.
    status, data = server.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}],
                                                         "max_tokens": 2, "frobnicate": {"a": 1}})
    assert status == 200, data
    assert server.get("/health")[0] == 200


# ---- Ollama ----

def test_ollama_client_chat_generate_and_listing(server):
    client = ollama.Client(host=server.url)
    names = [m.model for m in client.list().models]
    assert names == [ALIAS + ":latest"]
    r = client.chat(model=ALIAS, messages=[{"role": "user", "content": "Hello"}],
                    options={"num_predict": 12, "temperature": 0})
    assert r.message.role == "assistant" and r.message.content == greedy_run("Hello", 12)
    assert r.done and r.done_reason in ("length", "stop") and r.eval_count <= 12 and r.prompt_eval_count > 0
    streamed = list(client.chat(model=ALIAS + ":latest", messages=[{"role": "user", "content": "Hello"}],
                                options={"num_predict": 12, "temperature": 0}, stream=True))
    assert "".join(p.message.content for p in streamed) == r.message.content
    assert streamed[-1].done and not any(p.done for p in streamed[:-1])
    g = client.generate(model=ALIAS, prompt="Hello", options={"num_predict": 12, "temperature": 0})
    assert g.response == r.message.content and g.context
    parts = list(client.generate(model=ALIAS, prompt="Hello", options={"num_predict": 12, "temperature": 0},
                                 stream=True))
    assert "".join(p.response for p in parts) == g.response
    show = client.show(ALIAS)
    assert show.details.family == "qwen2" and show.modelinfo["general.architecture"] == "qwen2"
    assert [m.model for m in client.ps().models] == [ALIAS + ":latest"]
    with pytest.raises(ollama.ResponseError) as e:
        client.chat(model="nope", messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 404 and "not found" in e.value.error
    status, data = server.get("/api/version")
    assert status == 200 and "version" in json.loads(data)


def test_ollama_errors_are_plain_strings(server):
    status, data = server.post("/api/chat", {"model": ALIAS, "messages": [{"role": "user", "content": "x"}],
                                             "options": {"temperature": "warm"}})
    assert status == 400 and json.loads(data) == {"error": "'options.temperature' must be a number, got a string"}
    status, data = server.post("/api/generate", {"model": ALIAS, "prompt": "x", "format": {"type": "strange"}})
    assert status == 400 and json.loads(data) == {"error": "'format': json_schema: #/type: unknown type 'strange'"}
    status, data = server.request("POST", "/api/chat", b"{oops")
    assert status == 400 and "not valid JSON" in json.loads(data)["error"]


# ---- framing, as raw bytes ----

def test_sse_and_ndjson_framing_with_curl(server):
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed (scripts/setup.sh installs it)")
    out = subprocess.run([curl, "-sN", server.url + "/v1/chat/completions", "-H", "Content-Type: application/json",
                          "-d", json.dumps({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5,
                                            "stream": True})], capture_output=True, text=True, timeout=60).stdout
    events = [e for e in out.split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    for e in events[:-1]:
        assert e.startswith("data: ") and "\n" not in e
        json.loads(e[len("data: "):])
    out = subprocess.run([curl, "-sN", server.url + "/api/generate", "-d",
                          json.dumps({"model": ALIAS, "prompt": "Hi", "options": {"num_predict": 5}})],
                         capture_output=True, text=True, timeout=60).stdout
    lines = out.splitlines()
    objs = [json.loads(line) for line in lines]
    assert objs[-1]["done"] is True and all(o["done"] is False for o in objs[:-1])
    assert out.endswith("\n")


# ---- metrics ----

def test_metrics_pass_promtool_and_count_requests(server, oai):
    oai.chat.completions.create(model=ALIAS, messages=[{"role": "user", "content": "count me"}], max_tokens=3)
    text = server.metrics()
    for name in ("edgellm_requests_total", "edgellm_time_to_first_token_seconds_bucket",
                 "edgellm_time_per_output_token_seconds_bucket", "edgellm_request_duration_seconds_bucket",
                 "edgellm_request_queue_seconds_bucket", "edgellm_generated_tokens_total",
                 "edgellm_prompt_cached_tokens_total", "edgellm_queue_depth", "edgellm_running_sequences",
                 "edgellm_kv_blocks_used", "edgellm_kv_pool_blocks", "edgellm_prefix_cache_hits_total",
                 "edgellm_preemptions_total", "process_resident_memory_bytes", "process_cpu_seconds_total"):
        assert f"\n{name}" in text, name
    assert server.metric("edgellm_requests_total", route="/v1/chat/completions", model=ALIAS, status="200") >= 1
    assert server.metric("edgellm_kv_pool_blocks", model=ALIAS) > 0
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (scripts/setup.sh installs Debian's prometheus)")
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_board_sensors_and_the_grafana_dashboard(server):
    assert server.metric("edgellm_temperature_celsius", zone="thermal_zone0", type="soc-thermal") == 47.25
    assert server.metric("edgellm_cpu_frequency_hertz", cpu="4") == 2208000000
    assert server.metric("edgellm_npu_load_ratio", core="0") == 0.37
    # Every metric the dashboard queries is one the server exports.
    exported = {line.split("{")[0].split(" ")[0] for line in server.metrics().splitlines() if not line.startswith("#")}
    dashboard = json.loads((SOURCE_DIR / "deploy" / "grafana-dashboard.json").read_text())
    queried = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            queried |= set(re.findall(r"\b((?:edgellm|process)_[a-z_]+)\b", target["expr"]))
    assert queried and queried <= exported, sorted(queried - exported)
    assert {"edgellm_temperature_celsius", "process_resident_memory_bytes",
            "edgellm_time_to_first_token_seconds_bucket"} <= queried


# ---- clients that misbehave ----

def test_a_client_that_leaves_mid_stream_frees_its_sequence(server):
    cancelled = server.metric("edgellm_request_finish_total", model=ALIAS, reason="cancelled")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("POST", "/v1/chat/completions", body=json.dumps(
        {"messages": [{"role": "user", "content": "Tell me a long story"}], "max_tokens": 200, "stream": True,
         "temperature": 1.0}), headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200
    resp.fp.readline()  # the first event arrives
    conn.sock.shutdown(socket.SHUT_RDWR)
    conn.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if (server.metric("edgellm_request_finish_total", model=ALIAS, reason="cancelled") > cancelled and
                server.metric("edgellm_kv_blocks_used", model=ALIAS) == 0):
            break
        time.sleep(0.05)
    assert server.metric("edgellm_request_finish_total", model=ALIAS, reason="cancelled") == cancelled + 1
    assert server.metric("edgellm_running_sequences", model=ALIAS) == 0
    assert server.metric("edgellm_kv_blocks_used", model=ALIAS) == 0


def test_rapid_connect_close_cycles(server):
    for _ in range(1000):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        s.close()
    assert server.get("/health")[0] == 200
    status, _ = server.post("/v1/completions", {"prompt": "Hi", "max_tokens": 2})
    assert status == 200


def test_sigterm_ends_streams_with_a_final_event_and_exits_0():
    with EdgellmServer(["-m", MODEL, "--ctx", "1024", "-t", "2"]) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
        conn.request("POST", "/v1/chat/completions", body=json.dumps(
            {"messages": [{"role": "user", "content": "Tell me everything"}], "max_tokens": 900, "stream": True,
             "temperature": 1.0}), headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        first = resp.readline()  # the first event has arrived: the request is running
        assert first.startswith(b"data: ")
        start = time.monotonic()
        stopper = threading.Thread(target=srv.stop, kwargs={"timeout": 20})
        stopper.start()
        rest = resp.read().decode()
        stopper.join()
        assert rest.rstrip().endswith("data: [DONE]")
        assert '"finish_reason":"length"' in rest
        assert srv.exit_code == 0
        assert time.monotonic() - start < 15
