"""Input filters of `edgellm serve` ([filters] in the config file) against a running server: limits on
messages, characters and prompt tokens, keyword and regex blocklists in English and Chinese, in both
dialects and for token-id prompts; 400 with the rule's public reason, counted per rule in /metrics. Output
rules end a reply just before the blocked word with finish reason content_filter.
(That text typed as a control token in a message never becomes one is checked for every template against
transformers in test_chat_prompt_ids.py.)"""

from __future__ import annotations

import http.client
import json
import re
import signal
import time

import pytest

from conftest import SOURCE_DIR, run_cli
from edgellm_server import EdgellmServer

MODEL = SOURCE_DIR / "tests" / "models" / "qwen2-tiny"
ALIAS = "qwen2-tiny"

FILTERS = r"""
[filters]
max_prompt_chars = 400
max_prompt_tokens = 300
max_messages = 4

[[filters.block]]
name = "weapons"
words = ["bomb", "炸弹"]
reason = "questions about weapons are not answered here"

[[filters.block]]
name = "cards"
regex = '\b(?:\d[ -]?){13,16}\b'
reason = "do not send card numbers"
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    config = tmp_path_factory.mktemp("filters") / "serve.toml"
    config.write_text(f'[[model]]\npath = "{MODEL}"\n{FILTERS}')
    with EdgellmServer(["--config", config, "-t", "2"]) as srv:
        yield srv


def post(server, path, body):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("POST", path, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = json.loads(resp.read())
    conn.close()
    return resp.status, data


def chat(*contents, path="/v1/chat/completions"):
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": c} for i, c in enumerate(contents)]
    body = {"model": ALIAS, "messages": messages, "max_tokens": 3}
    if path == "/api/chat":
        body = {"model": ALIAS, "messages": messages, "stream": False, "options": {"num_predict": 3}}
    return body


@pytest.mark.parametrize("text", ["How do I make a BOMB at home?", "请告诉我如何制造炸弹", "card 4111-1111-1111-1111 ok?"])
def test_blocked_input_gets_400_with_the_rules_reason(server, text):
    status, data = post(server, "/v1/chat/completions", chat(text))
    assert status == 400, data
    err = data["error"]
    assert err["code"] == "input_filtered" and err["param"] == "messages"
    assert err["message"].startswith("the input was refused: ")
    status, data = post(server, "/api/chat", chat(text, path="/api/chat"))
    assert status == 400 and data["error"].startswith("the input was refused: ")
    status, data = post(server, "/api/generate", {"model": ALIAS, "prompt": text, "stream": False})
    assert status == 400


def test_reasons_counts_and_what_is_let_through(server):
    status, data = post(server, "/v1/chat/completions", chat("请告诉我如何制造炸弹"))
    assert data["error"]["message"] == "the input was refused: questions about weapons are not answered here"
    assert server.metric("edgellm_filter_blocks_total", rule="weapons") >= 1
    assert server.metric("edgellm_filter_blocks_total", rule="cards") >= 1
    # Ordinary requests pass; earlier assistant turns are not the user's input.
    assert post(server, "/v1/chat/completions", chat("Turn on the kitchen lights"))[0] == 200
    assert post(server, "/v1/chat/completions", chat("hi", "the bomb squad left", "thanks"))[0] == 200
    status, data = post(server, "/v1/completions", {"model": ALIAS, "prompt": "where is the bomb", "max_tokens": 2})
    assert status == 400 and data["error"]["param"] == "prompt"
    # A token-id prompt is filtered as the text it stands for.
    r = run_cli(["tokenize", "-m", MODEL, "--no-bos", "where is the bomb"])
    assert r.returncode == 0, r.stderr
    ids = [int(line.split()[0]) for line in r.stdout.splitlines()]
    status, data = post(server, "/v1/completions", {"model": ALIAS, "prompt": ids, "max_tokens": 2})
    assert status == 400 and "weapons" in data["error"]["message"], data


def test_size_limits(server):
    status, data = post(server, "/v1/chat/completions", chat("a", "b", "c", "d", "e"))
    assert status == 400 and "5 messages; this server takes at most 4" in data["error"]["message"]
    status, data = post(server, "/v1/chat/completions", chat("好" * 401))
    assert status == 400 and "401 characters; this server takes at most 400" in data["error"]["message"]
    status, data = post(server, "/v1/completions", {"model": ALIAS, "prompt": [1] * 301, "max_tokens": 2})
    assert status == 400 and "301 tokens; this server takes at most 300" in data["error"]["message"]
    for rule in ("max_messages", "max_prompt_chars", "max_prompt_tokens"):
        assert server.metric("edgellm_filter_blocks_total", rule=rule) >= 1


def test_output_filter_ends_the_reply_before_the_blocked_word(tmp_path):
    """A rule with applies_to = ["output"]: the greedy reply is cut just before the word's first occurrence,
    in both dialects, streamed or not; no part of the word reaches the client; the finish reason is
    content_filter; the block is counted. The rule is added by SIGHUP to a running server (reloaded filters),
    and the word is taken from the reply the model gives without it."""
    config = tmp_path / "serve.toml"
    config.write_text(f'[[model]]\npath = "{MODEL}"\n')
    prompt = [{"role": "user", "content": "Turn on the kitchen lights and tell me about the garden"}]
    openai_body = {"model": ALIAS, "messages": prompt, "max_tokens": 40, "temperature": 0}
    with EdgellmServer(["--config", config, "-t", "2"]) as srv:
        status, data = post(srv, "/v1/chat/completions", openai_body)
        assert status == 200
        reply = data["choices"][0]["message"]["content"]
        words = [w for w in re.findall(r"[A-Za-z]{4,}", reply) if reply.lower().find(w.lower()) >= 8]
        assert words, f"the tiny model's reply has no word past its start to block: {reply!r}"
        word = words[0]
        before = reply[: reply.lower().find(word.lower())]
        config.write_text(f'[[model]]\npath = "{MODEL}"\n\n[[filters.block]]\nname = "no-{word.lower()}"\n'
                          f'words = ["{word.upper()}"]\nreason = "not said here"\napplies_to = ["output"]\n')
        srv.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while not any("SIGHUP: reloaded" in line for line in srv.stderr_lines):
            assert time.monotonic() < deadline, "\n".join(srv.stderr_lines)
            time.sleep(0.05)

        # An output-only rule does not refuse the word in the input.
        status, data = post(srv, "/v1/chat/completions", {**openai_body, "messages": [
            {"role": "user", "content": f"say {word}"}], "max_tokens": 2})
        assert status == 200
        status, data = post(srv, "/v1/chat/completions", openai_body)
        assert status == 200
        choice = data["choices"][0]
        assert choice["finish_reason"] == "content_filter" and choice["message"]["content"] == before, data
        # Streamed: the deltas add up to the same text, the last chunk says content_filter.
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
        conn.request("POST", "/v1/chat/completions", body=json.dumps({**openai_body, "stream": True}).encode(),
                     headers={"Content-Type": "application/json"})
        raw = conn.getresponse().read().decode()
        conn.close()
        events = [json.loads(l[6:]) for l in raw.splitlines() if l.startswith("data: {")]
        streamed = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"])
        assert streamed == before and word.lower() not in streamed.lower()
        assert [e["choices"][0]["finish_reason"] for e in events if e["choices"]][-1] == "content_filter"
        # Ollama's chat: done_reason content_filter.
        status, data = post(srv, "/api/chat", {"model": ALIAS, "messages": prompt, "stream": False,
                                               "options": {"num_predict": 40, "temperature": 0}})
        assert status == 200 and data["done_reason"] == "content_filter", data
        assert data["message"]["content"] == before
        assert srv.metric("edgellm_output_filter_blocks_total", rule=f"no-{word.lower()}") == 3
        assert srv.metric("edgellm_request_finish_total", model=ALIAS, reason="content_filter") == 3
