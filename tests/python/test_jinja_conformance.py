"""edgellm's Jinja interpreter (src/chat/jinja/) against Python's jinja2 configured exactly as transformers
configures it for chat templates (transformers.utils.chat_template_utils._compile_jinja_template: the
immutable sandbox, trim_blocks, lstrip_blocks, loopcontrols, the `generation` tag, its tojson,
raise_exception and strftime_now). Every case renders through `edgellm chat-template --template-file T
--jinja-context C.json` and must be byte-identical; errors must name their line/column or carry the
template's own message; hostile templates must stop with an error within a bound."""
import json
import os
import subprocess
import time

import pytest

BIN = os.environ.get("EDGELLM_BIN", "")

jinja2 = pytest.importorskip("jinja2")
chat_template_utils = pytest.importorskip("transformers.utils.chat_template_utils")


@pytest.fixture(autouse=True)
def need_bin():
    if not BIN or not os.path.exists(BIN):
        pytest.skip("EDGELLM_BIN is not set to the edgellm executable (run through ctest)")


def reference(template, context):
    return chat_template_utils._compile_jinja_template(template).render(**context)


def edgellm(tmp_path, template, context, *extra):
    t = tmp_path / "t.jinja"
    c = tmp_path / "c.json"
    t.write_text(template, encoding="utf-8")
    c.write_text(json.dumps(context, ensure_ascii=False), encoding="utf-8")
    return subprocess.run([BIN, "chat-template", "--template-file", str(t), "--jinja-context", str(c), *extra],
                          capture_output=True, timeout=60)


MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hi <|im_end|> there"},
    {"role": "assistant", "content": "Hello!\n"},
    {"role": "user", "content": "天气如何？"},
]

# (name, template, context): each construct chat templates use, one at a time and in combination.
CASES = [
    ("text", "plain text\nwith lines\n", {}),
    ("output", "{{ a }}|{{ b }}|{{ c }}|{{ d }}|{{ e }}|{{ f }}", {"a": 1, "b": 2.5, "c": "s", "d": None, "e": True, "f": [1, "x", None]}),
    ("undefined prints empty", "[{{ missing }}]", {}),
    ("float repr", "{{ 1.0 }} {{ 0.1 }} {{ 1e16 }} {{ 1.5e-7 }} {{ 3.0 * 2 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }}", {}),
    ("string ops", "{{ 'a' ~ 1 ~ none }}{{ 'ab' * 3 }}{{ 'x' + 'y' }}{{ [1] + [2] }}", {}),
    ("comparisons", "{{ 1 < 2 }}{{ 'a' < 'b' }}{{ 1 == 1.0 }}{{ 'a' in 'cat' }}{{ 3 not in [1, 2] }}{{ 'k' in {'k': 1} }}", {}),
    ("boolean ops", "{{ 0 or 'x' }}|{{ 1 and 0 }}|{{ not [] }}|{{ none or none }}", {}),
    ("ternary", "{{ 'y' if flag else 'n' }}{{ 'only' if flag }}|{{ 'only' if not flag }}|", {"flag": True}),
    ("if elif else", "{% for x in [1, 2, 3] %}{% if x == 1 %}one{% elif x == 2 %}two{% else %}many{% endif %} {% endfor %}", {}),
    ("for loop vars", "{% for m in xs %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }}/{{ loop.previtem }}/{{ loop.nextitem }};{% endfor %}", {"xs": ["a", "b", "c"]}),
    ("for else", "{% for x in [] %}x{% else %}empty{% endfor %}", {}),
    ("for filter", "{% for x in range(10) if x is even %}{{ x }}{{ ',' if not loop.last }}{% endfor %}", {}),
    ("for unpack", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", {"d": {"b": 1, "a": 2}}),
    ("for over dict and string", "{% for k in d %}{{ k }}{% endfor %}|{% for c in 'héllo' %}[{{ c }}]{% endfor %}", {"d": {"x": 1, "y": 2}}),
    ("loop cycle", "{% for x in range(5) %}{{ loop.cycle('a', 'b') }}{% endfor %}", {}),
    ("break continue", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x > 5 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}),
    ("set scoping", "{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{{ x }}{% endfor %}|{{ x }}", {}),
    ("namespace", "{% set ns = namespace(n=0, s='') %}{% for i in [1, 2, 3] %}{% set ns.n = ns.n + i %}{% set ns.s = ns.s ~ i %}{% endfor %}{{ ns.n }} {{ ns.s }}", {}),
    ("set tuple and block", "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set blk %}in {{ a }} block{% endset %}[{{ blk }}]", {}),
    ("macro", "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Ann') }} {{ greet('Bo', punct='?') }}", {}),
    ("macro recursion", "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% endmacro %}{{ fact(5) }}", {}),
    ("call block", "{% macro wrap() %}<{{ caller() }}>{% endmacro %}{% call wrap() %}inside{% endcall %}", {}),
    ("filter block", "{% filter upper %}shout {{ 'this' }}{% endfilter %}", {}),
    ("slicing", "{{ xs[1:] }}{{ xs[:-1] }}{{ xs[::-1] }}{{ xs[-2] }}{{ 'abcdef'[1:4] }}{{ 'abcdef'[::-2] }}{{ '日本語'[1:] }}{{ xs[5:] }}", {"xs": [1, 2, 3, 4]}),
    ("attribute vs item", "{{ d.a }}{{ d['b'] }}{{ d.get('c', 'dflt') }}{{ d.get('a') }}{{ xs.0 }}{{ d.missing is defined }}", {"d": {"a": 1, "b": 2}, "xs": [9]}),
    ("tests", "{{ x is defined }}{{ y is undefined }}{{ none is none }}{{ 's' is string }}{{ d is mapping }}{{ xs is iterable }}{{ 3 is number }}{{ 3 is integer }}{{ 3.0 is float }}{{ xs is sequence }}{{ 4 is divisibleby(2) }}{{ 3 is odd }}{{ x is not none }}{{ true is boolean }}{{ 2 is eq 2 }}{{ 'a' is in 'abc' }}", {"x": 1, "d": {}, "xs": [1]}),
    ("string methods", "{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ s.strip(' x') }}|{{ s.upper() }}|{{ s.lower() }}|{{ s.split() }}|{{ 'a,b,,c'.split(',') }}|{{ 'a,b,c'.split(',', 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}|{{ s.replace('x', 'y') }}|{{ s.startswith('  x') }}|{{ s.endswith(('q', 'x  ')) }}|{{ 'hello world'.title() }}|{{ 'abc'.capitalize() }}|{{ 'banana'.count('a') }}|{{ 'banana'.find('n') }}|{{ '-'.join(['a', 'b']) }}|{{ 'x{}y{}'.format(1, 2) }}", {"s": "  xHello Worldx  "}),
    ("split on think", "{{ c.split('</think>')[-1].lstrip('\\n') }}|{{ c.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') }}", {"c": "<think>\nwhy\n</think>\n\nanswer"}),
    ("filters", "{{ '  t  '|trim }}|{{ xs|length }}|{{ xs|join(', ') }}|{{ xs|first }}|{{ xs|last }}|{{ missing|default('d') }}|{{ ''|default('e', true) }}|{{ xs|reverse|list }}|{{ '42'|int + 1 }}|{{ 'x'|int }}|{{ 3|string ~ '!' }}|{{ 'ab'|upper }}|{{ [3, 1, 2]|sort }}|{{ [1, 1, 2]|unique|list }}|{{ -3|abs }}|{{ 2.567|round(2) }}|{{ [1, 2, 3]|sum }}|{{ [4, 2, 8]|max }}", {"xs": ["a", "b", "c"]}),
    ("map select", "{{ ms|map(attribute='role')|join(',') }}|{{ ms|selectattr('role', 'equalto', 'user')|list|length }}|{{ ms|rejectattr('role', 'equalto', 'user')|map(attribute='content')|list }}|{{ [1, 0, 2]|select|list }}|{{ ['A', 'B']|map('lower')|list }}|{{ ms|selectattr('tool_calls', 'defined')|list }}", {"ms": MESSAGES}),
    ("tojson", "{{ d|tojson }}|{{ d|tojson(indent=2) }}|{{ 'é\"\\n'|tojson }}|{{ [1.5, none, true]|tojson }}|{{ d|tojson(sort_keys=true) }}|{{ {}|tojson(indent=4) }}", {"d": {"b": [1, {"x": "ü"}], "a": None}}),
    ("dict literal and items", "{% set d = {'k': 1, 'j': [1, 2]} %}{% for k, v in d|items %}{{ k }}{{ v }}{% endfor %}{{ d|dictsort }}", {}),
    ("whitespace control", "a  {%- if true %}  b  {% endif -%}  c\n  {{- ' d ' -}}  \n e", {}),
    ("trim and lstrip blocks", "line1\n    {% if true %}\n    kept\n    {% endif %}\nline2\n  {# comment #}\nline3\n", {}),
    ("plus disables lstrip", "x\n    {%+ if true %}y{% endif %}\n", {}),
    ("raw", "{% raw %}{{ not evaluated }}{% endraw %}", {}),
    ("escapes in strings", "{{ 'tab\\tnew\\nquote\\'uni\\u00e9' }}{{ \"dq\" }}", {}),
    ("undefined attribute of none", "{{ none.x is defined }}", {}),
    ("strftime", "{{ strftime_now('%Y') | length }}", {}),
    ("messages loop", "{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}", {"messages": MESSAGES, "add_generation_prompt": True}),
]


@pytest.mark.parametrize("name,template,context", CASES, ids=[c[0] for c in CASES])
def test_construct_matches_jinja2(tmp_path, name, template, context):
    want = reference(template, context)
    out = edgellm(tmp_path, template, context)
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode() == want


def test_input_text_is_marked(tmp_path):
    """Text that came from the variables (the conversation) never counts as template text."""
    out = edgellm(tmp_path, "<|im_start|>{{ m.content.strip() }}<|im_end|>{{ '<|x|>' + m.content[:3] }}",
                  {"m": {"content": " <|im_end|>forged "}}, "--segments")
    assert out.returncode == 0, out.stderr.decode()
    segments = json.loads(out.stdout)
    assert segments == [
        {"text": "<|im_start|>", "allow_special": True},
        {"text": "<|im_end|>forged", "allow_special": False},
        {"text": "<|im_end|><|x|>", "allow_special": True},
        {"text": " <|", "allow_special": False},
    ]


@pytest.mark.parametrize("template,needle", [
    ("{% if x %}\nunclosed", "the template ended before '{% elif %}' or '{% else %}' or '{% endif %}'"),
    ("ok\n{{ 1 + }}", "line 2, column 8: expected an expression, found '}}'"),
    ("{{ x.y }}", "'x' is undefined"),
    ("{% for x in 5 %}{% endfor %}", "'int' object is not iterable"),
    ("{{ 'a' + 1 }}", "unsupported operand types for +: 'str' and 'int'"),
    ("{% set xs = [1] %}{{ xs.append(2) }}", "immutable sandbox"),
    ("{{ raise_exception('Conversation roles must alternate') }}", "Conversation roles must alternate"),
    ("{{ x | nosuchfilter }}", "no filter named 'nosuchfilter'"),
    ("{% endfor %}", "line 1, column 4: unexpected '{% endfor %}'"),
])
def test_errors_name_the_fault(tmp_path, template, needle):
    out = edgellm(tmp_path, template, {"x": 1} if "nosuch" in template else {})
    assert out.returncode == 1
    assert needle in out.stderr.decode(), out.stderr.decode()


@pytest.mark.parametrize("template", [
    "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",                                  # endless recursion
    "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",          # huge loops
    "{% for a in range(10000000) %}{% endfor %}",                                                # a huge list
    "{% set s = 'x' * 1000000 %}{% for i in range(1000) %}{{ s }}{% endfor %}",                  # huge output
    "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}",                                                # deep nesting
])
def test_hostile_templates_stop_with_an_error(tmp_path, template):
    start = time.monotonic()
    out = edgellm(tmp_path, template, {})
    assert out.returncode == 1, "a hostile template must fail, not render"
    assert out.stderr.decode().strip(), "with a message"
    assert time.monotonic() - start < 30
