"""The time-of-day policy of `edgellm serve` ([[policy]] in the config file) against a running server whose
local time is set through TZ: at 09:30 the 08:00-10:00 rule caps the reply, at 11:30 the all-day rule
applies, a rule for one key leaves the others alone; the header X-Edgellm-Policy and
edgellm_policy_applied_total report it, in both dialects."""

from __future__ import annotations

import datetime
import http.client
import json

import pytest

from conftest import SOURCE_DIR, run_cli
from edgellm_server import EdgellmServer

MODEL = SOURCE_DIR / "tests" / "models" / "qwen2-tiny"
ALIAS = "qwen2-tiny"

POLICY = """
[[policy]]
from = "08:00"
to = "10:00"
max_tokens = 5

[[policy]]
from = "10:00"
to = "14:00"
max_tokens = 12
keys = ["garden"]

[[policy]]
max_tokens = 40
"""


def tz_for_local_time(hour: int, minute: int) -> str:
    """A POSIX TZ whose local time is now hour:minute (give or take the seconds the test takes)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    offset = (hour * 60 + minute) - (now.hour * 60 + now.minute)
    offset = (offset + 720) % 1440 - 720  # within +-12 h
    sign = "-" if offset >= 0 else "+"     # POSIX: the offset to add to local time to get UTC
    return f"EDG{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("policy")
    keys_file = d / "keys.txt"
    out = {}
    for name in ("kitchen", "garden"):
        r = run_cli(["keys", "add", name, "--file", keys_file])
        assert r.returncode == 0, r.stderr
        out[name] = r.stdout.strip()
    config = d / "serve.toml"
    config.write_text(f'[[model]]\npath = "{MODEL}"\n\n[auth]\napi_keys_file = "{keys_file}"\n{POLICY}')
    out["config"] = config
    return out


def chat(server, key, max_tokens=30, dialect="openai"):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    if dialect == "openai":
        body = {"model": ALIAS, "messages": [{"role": "user", "content": "Hello"}], "max_tokens": max_tokens,
                "ignore_eos": True}
        path = "/v1/chat/completions"
    else:
        body = {"model": ALIAS, "messages": [{"role": "user", "content": "Hello"}], "stream": False,
                "options": {"num_predict": max_tokens}}
        path = "/api/chat"
    conn.request("POST", path, body=json.dumps(body).encode(),
                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
    resp = conn.getresponse()
    data = json.loads(resp.read())
    conn.close()
    assert resp.status == 200, data
    tokens = data["usage"]["completion_tokens"] if dialect == "openai" else data["eval_count"]
    return tokens, resp.getheader("X-Edgellm-Policy")


def test_peak_hours_cap_the_reply(keys):
    with EdgellmServer(["--config", keys["config"], "-t", "2"], env={"TZ": tz_for_local_time(9, 30)},
                       api_key=keys["kitchen"]) as srv:
        tokens, header = chat(srv, keys["kitchen"])
        assert tokens == 5
        assert header == "max_tokens=5; rule=1 (08:00-10:00); capped from 30"
        tokens, header = chat(srv, keys["garden"], max_tokens=3)
        assert tokens == 3 and header == "max_tokens=5; rule=1 (08:00-10:00)"
        tokens, header = chat(srv, keys["kitchen"], dialect="ollama")
        assert tokens <= 5 and header.startswith("max_tokens=5; rule=1 (08:00-10:00)")
        assert srv.metric("edgellm_policy_applied_total", rule="1 (08:00-10:00)", result="capped") == 2
        assert srv.metric("edgellm_policy_applied_total", rule="1 (08:00-10:00)", result="within") == 1


def test_after_the_peak_the_all_day_rule_and_a_rule_for_one_key(keys):
    with EdgellmServer(["--config", keys["config"], "-t", "2"], env={"TZ": tz_for_local_time(11, 30)},
                       api_key=keys["kitchen"]) as srv:
        tokens, header = chat(srv, keys["kitchen"])
        assert tokens == 30 and header == "max_tokens=40; rule=3 (all day)"
        tokens, header = chat(srv, keys["garden"])
        assert tokens == 12 and header == "max_tokens=12; rule=2 (10:00-14:00); capped from 30"
        assert srv.metric("edgellm_policy_applied_total", rule="2 (10:00-14:00)", result="capped") == 1
