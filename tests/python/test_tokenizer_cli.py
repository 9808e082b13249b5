"""`edgellm tokenize` as a user and a script see it: output formats, stdin, and bad input (clear message,
exit code 1, never a crash)."""
import json
import os
import subprocess

import pytest

BIN = os.environ.get("EDGELLM_BIN", "")
SHARED = os.environ.get("EDGELLM_SHARED") or os.path.join(
    os.environ.get("EDGELLM_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build")), "reference")
QWEN3 = os.path.join(SHARED, "data/qwen3-tokenizer/tokenizer.json")
LLAMA3 = os.path.join(SHARED, "data/llama3-tokenizer/tokenizer.json")
QWEN1 = os.path.join(SHARED, "data/qwen1-tiktoken/qwen.tiktoken")


@pytest.fixture(autouse=True)
def need_bin():
    if not BIN or not os.path.exists(BIN):
        pytest.skip("EDGELLM_BIN is not set to the edgellm executable (run through ctest)")


def need(path):
    if not os.path.exists(path):
        pytest.fail(f"reference file {path} is absent (tests/data/reference is unpacked into BUILD/reference when CMake configures the build)")
    return path


def run(*args, stdin=b""):
    return subprocess.run([BIN, "tokenize", *args], input=stdin, capture_output=True, timeout=120)


def test_ids_count_and_pieces():
    tok = need(QWEN3)
    out = run("--tokenizer", tok, "--ids", "Hello world")
    assert out.returncode == 0 and out.stdout == b"9707 1879\n"
    out = run("--tokenizer", tok, "--count", "Hello world")
    assert out.returncode == 0 and out.stdout == b"2\n"
    out = run("--tokenizer", tok, "Hello, 你好<|im_end|>")
    assert out.returncode == 0
    lines = out.stdout.decode().splitlines()
    assert lines[0].split() == ["9707", "'Hello'"]
    assert "'你好'" in out.stdout.decode()
    assert lines[-1].split() == ["151645", "'<|im_end|>'", "(special)"]


def test_no_special_and_bos():
    tok = need(LLAMA3)
    assert run("--tokenizer", tok, "--ids", "Hello world").stdout == b"128000 9906 1917\n"
    assert run("--tokenizer", tok, "--ids", "--no-bos", "Hello world").stdout == b"9906 1917\n"
    special = run("--tokenizer", tok, "--ids", "--no-bos", "<|eot_id|>").stdout.split()
    plain = run("--tokenizer", tok, "--ids", "--no-bos", "--no-special", "<|eot_id|>").stdout.split()
    assert special == [b"128009"]
    assert len(plain) > 1 and b"128009" not in plain


def test_stdin_and_model_directory():
    tok = need(QWEN3)
    text = "line one\nline two\n".encode()
    out = run("--tokenizer", tok, "--ids", "-", stdin=text)
    assert out.returncode == 0
    direct = run("-m", os.path.dirname(tok), "--ids", text.decode())
    assert out.stdout == direct.stdout
    back = run("--tokenizer", tok, "--decode", out.stdout.decode().strip())
    assert back.returncode == 0 and back.stdout == text


def test_tiktoken_and_lines_mode(tmp_path):
    tok = need(QWEN1)
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps("Hello world") + "\n" + json.dumps("") + "\n" + json.dumps("a\nb") + "\n")
    out = run("--tokenizer", tok, "--lines", str(src))
    assert out.returncode == 0
    assert out.stdout.decode().split("\n") == ["9707 1879", "", "64 198 65", ""]
    out = run("--tokenizer", tok, "--lines", str(src), "--count")
    assert out.stdout == b"2\n0\n3\n"


def test_gguf_written_by_cli_loads_as_model(tmp_path):
    tok = need(QWEN3)
    gguf = tmp_path / "t.gguf"
    assert run("--tokenizer", tok, "--write-gguf", str(gguf)).returncode == 0
    assert run("-m", str(gguf), "--ids", "Hello world").stdout == b"9707 1879\n"


@pytest.mark.parametrize("args,stdin,message", [
    (["--tokenizer", "/nonexistent/tokenizer.json", "x"], b"", "no such file"),
    (["--ids", "x"], b"", "exactly one of"),
    (["--tokenizer", "@MALFORMED", "x"], b"", "malformed JSON"),
    (["--tokenizer", "@EMPTYOBJ", "x"], b"", "model"),
    (["--tokenizer", "@QWEN3", "-"], b"abc\xff\xfe", "invalid UTF-8 at byte 3"),
    (["--tokenizer", "@QWEN3", "--decode", "1 2 banana"], b"", "'banana' is not a token id"),
    (["--tokenizer", "@QWEN3", "--decode", "99999999"], b"", "not a token id"),
    (["--tokenizer", "@QWEN3", "--lines", "/nonexistent/lines.jsonl"], b"", "cannot open"),
    (["--tokenizer", "@QWEN3", "--lines", "@NOTJSONL"], b"", "line 1: expected a JSON string"),
    (["--tokenizer", "@GARBAGE", "x"], b"", "not a tokenizer.json"),
])
def test_bad_input_is_a_clear_error(tmp_path, args, stdin, message):
    (tmp_path / "bad.json").write_text('{"model": ')
    (tmp_path / "empty.json").write_text("{}")
    (tmp_path / "lines.txt").write_text("not json\n")
    (tmp_path / "garbage.bin").write_bytes(b"\x00\x01\x02garbage")
    subst = {"@MALFORMED": str(tmp_path / "bad.json"), "@EMPTYOBJ": str(tmp_path / "empty.json"),
             "@NOTJSONL": str(tmp_path / "lines.txt"), "@GARBAGE": str(tmp_path / "garbage.bin"), "@QWEN3": QWEN3}
    if "@QWEN3" in args:
        need(QWEN3)
    out = run(*[subst.get(a, a) for a in args], stdin=stdin)
    assert out.returncode == 1, (out.returncode, out.stderr)
    err = out.stderr.decode()
    assert err.startswith("edgellm tokenize: ") and message in err, err


def test_nul_bytes_and_empty_input():
    tok = need(QWEN3)
    out = run("--tokenizer", tok, "--ids", "-", stdin=b"a\x00b")
    assert out.returncode == 0 and len(out.stdout.split()) >= 2
    out = run("--tokenizer", tok, "--count", "-", stdin=b"")
    assert out.returncode == 0 and out.stdout == b"0\n"
