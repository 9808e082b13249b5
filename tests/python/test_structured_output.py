"""Grammar-constrained decoding through every door: forced tool calls (OpenAI tool_choice, edgellm's Ollama
extension), OpenAI response_format json_object / json_schema, llama.cpp's grammar and json_schema fields,
Ollama's format, and `edgellm run --grammar / --json-schema`.

The model is the trained qwen2-tiny fixture, which was never taught JSON or tool calls: left alone it writes
prose, so every valid output here is the grammar's doing. Sampling runs at temperature 1 with a new seed per
request, and every output must parse and validate (Python jsonschema)."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import SOURCE_DIR, run_cli
from edgellm_server import EdgellmServer

openai = pytest.importorskip("openai")
ollama = pytest.importorskip("ollama")
jsonschema = pytest.importorskip("jsonschema")

MODEL = SOURCE_DIR / "tests" / "models" / "qwen2-tiny"
ALIAS = "qwen2-tiny"

TOOLS = [
    {"type": "function", "function": {
        "name": "set_light", "description": "Switch a light and set its brightness",
        "parameters": {"type": "object", "properties": {
            "room": {"type": "string", "enum": ["kitchen", "hall", "bedroom"]},
            "on": {"type": "boolean"},
            "brightness": {"type": "integer"}},
            "required": ["room", "on"]}}},
    {"type": "function", "function": {
        "name": "get_temperature", "description": "Read a room's thermometer",
        "parameters": {"type": "object", "properties": {"room": {"type": "string", "maxLength": 16}},
                       "required": ["room"]}}},
]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}

# A reply schema with every kind of node the converter handles.
REPLY_SCHEMA = {
    "$defs": {"reading": {"type": "object", "properties": {
        "sensor": {"type": "string", "maxLength": 12}, "value": {"type": "number"}}, "required": ["sensor", "value"],
        "additionalProperties": False}},
    "type": "object",
    "properties": {
        "action": {"enum": ["on", "off", "dim"]},
        "rooms": {"type": "array", "items": {"type": "string", "maxLength": 10}, "minItems": 1, "maxItems": 3},
        "level": {"type": "integer"},
        "note": {"type": ["string", "null"], "maxLength": 20},
        "reading": {"$ref": "#/$defs/reading"},
        "confirm": {"type": "boolean"},
    },
    "required": ["action", "rooms", "reading"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def server():
    with EdgellmServer(["-m", MODEL, "--parallel", "4", "--ctx", "1024", "-t", "2"]) as srv:
        yield srv


@pytest.fixture(scope="module")
def oai(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=300)


def _parallel(fn, items, workers=4):
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


def _check_call(name: str, arguments) -> None:
    assert name in SCHEMAS, name
    args = json.loads(arguments) if isinstance(arguments, str) else arguments
    jsonschema.validate(args, SCHEMAS[name])


# ---- forced tool calls ----

def test_forced_call_is_valid_for_100_seeds(oai):
    """tool_choice "required": every reply is exactly one call whose arguments validate, 100 seeds out of 100."""
    messages = [{"role": "user", "content": "It is dark in the kitchen"}]

    def one(seed):
        r = oai.chat.completions.create(model=ALIAS, messages=messages, tools=TOOLS, tool_choice="required",
                                        parallel_tool_calls=False, temperature=1.0, seed=seed, max_tokens=200)
        return r.choices[0]

    choices = _parallel(one, range(100))
    names = set()
    for c in choices:
        assert c.finish_reason == "tool_calls", c
        assert len(c.message.tool_calls) == 1
        call = c.message.tool_calls[0]
        _check_call(call.function.name, call.function.arguments)
        names.add(call.function.name)
    assert names == {"set_light", "get_temperature"}  # the choice is the model's, not fixed


def test_named_call_streamed_and_not(oai):
    choice = {"type": "function", "function": {"name": "get_temperature"}}
    messages = [{"role": "user", "content": "How warm is the hall?"}]
    r = oai.chat.completions.create(model=ALIAS, messages=messages, tools=TOOLS, tool_choice=choice, seed=3,
                                    temperature=1.0, max_tokens=200)
    call = r.choices[0].message.tool_calls[0]
    assert call.function.name == "get_temperature" and r.choices[0].finish_reason == "tool_calls"
    _check_call(call.function.name, call.function.arguments)
    chunks = list(oai.chat.completions.create(model=ALIAS, messages=messages, tools=TOOLS, tool_choice=choice,
                                              seed=3, temperature=1.0, max_tokens=200, stream=True))
    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert len(deltas) == 1 and deltas[0].function.name == "get_temperature"
    assert json.loads(deltas[0].function.arguments) == json.loads(call.function.arguments)  # same seed, same call
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]


def test_parallel_calls_may_be_several(oai):
    counts = set()
    for seed in range(12):
        r = oai.chat.completions.create(model=ALIAS, messages=[{"role": "user", "content": "All lights on"}],
                                        tools=TOOLS, tool_choice="required", temperature=1.0, seed=seed,
                                        max_tokens=400)
        if r.choices[0].finish_reason == "length":
            continue
        for call in r.choices[0].message.tool_calls:
            _check_call(call.function.name, call.function.arguments)
        counts.add(len(r.choices[0].message.tool_calls))
    assert counts and min(counts) >= 1


def test_ollama_client_receives_forced_calls(server):
    """Ollama has no tool_choice; edgellm accepts OpenAI's as an extension. The request goes through the ollama
    client's own request path (ChatRequest -> ChatResponse parsing), streamed and not."""
    client = ollama.Client(host=server.url)
    body = ollama._types.ChatRequest(model=ALIAS, messages=[{"role": "user", "content": "Light the bedroom"}],
                                     tools=TOOLS, options={"temperature": 1.0, "seed": 5, "num_predict": 200},
                                     stream=False).model_dump(exclude_none=True)
    body["tool_choice"] = {"type": "function", "function": {"name": "set_light"}}
    reply = client._request(ollama._types.ChatResponse, "POST", "/api/chat", json=body, stream=False)
    assert reply.done and len(reply.message.tool_calls) == 1
    call = reply.message.tool_calls[0]
    assert call.function.name == "set_light"
    _check_call("set_light", dict(call.function.arguments))
    body["stream"] = True
    parts = list(client._request(ollama._types.ChatResponse, "POST", "/api/chat", json=body, stream=True))
    streamed = [tc for p in parts for tc in (p.message.tool_calls or [])]
    assert len(streamed) == 1 and dict(streamed[0].function.arguments) == dict(call.function.arguments)


# ---- structured replies ----

def test_200_schema_constrained_replies_validate(server, oai):
    """200 generations under REPLY_SCHEMA, through three doors (OpenAI response_format, llama.cpp's json_schema
    field, Ollama's format): every one finishes, parses and validates."""
    messages = [{"role": "user", "content": "Report the kitchen"}]
    response_format = {"type": "json_schema", "json_schema": {"name": "report", "schema": REPLY_SCHEMA, "strict": True}}

    def via_openai(seed):
        r = oai.chat.completions.create(model=ALIAS, messages=messages, response_format=response_format,
                                        temperature=1.0, seed=seed, max_tokens=600)
        return r.choices[0].finish_reason, r.choices[0].message.content

    def via_llamacpp_field(seed):
        r = oai.chat.completions.create(model=ALIAS, messages=messages, temperature=1.0, seed=seed, max_tokens=600,
                                        extra_body={"json_schema": REPLY_SCHEMA})
        return r.choices[0].finish_reason, r.choices[0].message.content

    client = ollama.Client(host=server.url)

    def via_ollama(seed):
        r = client.chat(model=ALIAS, messages=messages, format=REPLY_SCHEMA,
                        options={"temperature": 1.0, "seed": seed, "num_predict": 600})
        return r.done_reason, r.message.content

    results = (_parallel(via_openai, range(0, 120)) + _parallel(via_llamacpp_field, range(120, 160)) +
               _parallel(via_ollama, range(160, 200)))
    assert len(results) == 200
    actions = set()
    for reason, text in results:
        assert reason == "stop", (reason, text)
        value = json.loads(text)
        jsonschema.validate(value, REPLY_SCHEMA)
        actions.add(value["action"])
    assert len(actions) >= 2  # sampled, not fixed


def test_json_object_and_ollama_json(server, oai):
    for seed in range(10):
        r = oai.chat.completions.create(model=ALIAS, messages=[{"role": "user", "content": "Give me data"}],
                                        response_format={"type": "json_object"}, temperature=1.0, seed=seed,
                                        max_tokens=300)
        if r.choices[0].finish_reason == "stop":
            assert isinstance(json.loads(r.choices[0].message.content), dict)
        else:  # an unbounded object may run out of tokens: what was written is still a valid prefix
            assert r.choices[0].message.content.lstrip().startswith("{")
    out = ollama.Client(host=server.url).generate(model=ALIAS, prompt="data", format="json",
                                                  options={"seed": 1, "num_predict": 300})
    assert out.response.lstrip().startswith("{")


def test_gbnf_grammar_field_and_completions(server, oai):
    grammar = 'root ::= ("on" | "off") " " room\nroom ::= [a-z]{3,8}\n'
    seen = set()
    for seed in range(20):
        r = oai.chat.completions.create(model=ALIAS, messages=[{"role": "user", "content": "switch"}], temperature=1.0,
                                        seed=seed, max_tokens=50, extra_body={"grammar": grammar})
        text = r.choices[0].message.content
        assert re.fullmatch(r"(on|off) [a-z]{3,8}", text), text
        assert r.choices[0].finish_reason == "stop"
        seen.add(text)
    assert len(seen) > 3
    c = oai.completions.create(model=ALIAS, prompt="The answer is", max_tokens=20, temperature=1.0, seed=2,
                               extra_body={"grammar": 'root ::= " " [0-9]{2}\n'})
    assert re.fullmatch(r" [0-9]{2}", c.choices[0].text) and c.choices[0].finish_reason == "stop"


def test_bad_constraints_are_400s_naming_the_field(server, oai):
    msg = [{"role": "user", "content": "x"}]
    cases = [
        ({"extra_body": {"grammar": "root ::= [a-z\n"}}, "grammar", "line 1, column"),
        ({"extra_body": {"grammar": "root ::= item\n"}}, "grammar", "rule 'item' is used but never defined"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {
            "type": "object", "properties": {"zip": {"type": "string", "pattern": "[0-9]+"}}}}}},
         "response_format.json_schema.schema", "#/properties/zip: 'pattern' is not supported"),
        ({"response_format": {"type": "yaml"}}, "response_format.type", "'json_object' or 'json_schema'"),
        ({"response_format": {"type": "json_object"}, "extra_body": {"grammar": "root ::= \"a\"\n"}}, "grammar",
         "both constrain the reply"),
        ({"tool_choice": "required"}, "tool_choice", "needs 'tools'"),
        ({"tools": TOOLS, "tool_choice": "required", "response_format": {"type": "json_object"}}, "tool_choice",
         "cannot be combined"),
    ]
    for kwargs, param, words in cases:
        with pytest.raises(openai.BadRequestError) as e:
            oai.chat.completions.create(model=ALIAS, messages=msg, max_tokens=5, **kwargs)
        assert e.value.body["param"] == param and words in e.value.body["message"], (kwargs, e.value.body)
    status, data = server.post("/api/generate", {"model": ALIAS, "prompt": "x", "format": "xml"})
    assert status == 400 and "'format' must be \"json\" or a JSON Schema object" in json.loads(data)["error"]
    # The server is fine afterwards.
    r = oai.chat.completions.create(model=ALIAS, messages=msg, max_tokens=3)
    assert r.choices[0].finish_reason in ("stop", "length")


# ---- the command line ----

def test_cli_grammar_and_json_schema(tmp_path):
    g = tmp_path / "yes_no.gbnf"
    g.write_text('root ::= ("yes" | "no") "." \n')
    r = run_cli(["run", "-m", MODEL, "-p", "Is it on?", "--grammar", g, "--seed", "4", "-n", "20"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() in ("yes.", "no.")
    s = tmp_path / "reading.json"
    s.write_text(json.dumps(REPLY_SCHEMA["$defs"]["reading"]))
    r = run_cli(["run", "-m", MODEL, "-p", "Reading:", "--json-schema", s, "--seed", "9", "-n", "200"])
    assert r.returncode == 0, r.stderr
    jsonschema.validate(json.loads(r.stdout), REPLY_SCHEMA["$defs"]["reading"])
    bad = tmp_path / "bad.gbnf"
    bad.write_text("root ::= \"a\" |\n  (\"b\"\n")
    r = run_cli(["run", "-m", MODEL, "-p", "x", "--grammar", bad])
    assert r.returncode != 0 and "grammar: line" in r.stderr
