"""`edgellm run` and `edgellm chat` (issue 5, item 7) on a tiny synthetic model:

  - run streams the answer to stdout, --verbose adds the figures on stderr, presets and sampling flags
    (Mirostat included) are accepted and bad values are refused with a message naming them;
  - a greedy `run` answer equals the first answer of a greedy `chat` on the same prompt;
  - chat's /save, /reset, /load and /preset: a conversation restored with /load continues exactly as the
    uninterrupted one does;
  - Ctrl-C (SIGINT) on a terminal stops the current answer, prints "(stopped)", and the chat goes on.
"""
from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import time

import pytest

from conftest import edgellm_bin, run_cli


@pytest.fixture(scope="module")
def model(tmp_path_factory, bin_path):
    out = tmp_path_factory.mktemp("cli") / "tiny-q8.gguf"
    r = run_cli(["synth", "--preset", "tiny", "--type", "q8_0", "-o", out])
    assert r.returncode == 0, r.stderr
    return out


def chat(model, lines, *flags, timeout=300):
    cmd = [str(edgellm_bin()), "chat", "-m", str(model), *map(str, flags)]
    env = dict(os.environ, EDGELLM_ACTIVATIONS="int8")  # the default path, as in the run test below
    return subprocess.run(cmd, input="".join(line + "\n" for line in lines), capture_output=True, text=True,
                          timeout=timeout, errors="replace", env=env)


def answers(stdout: str) -> list[str]:
    """The answer lines of a scripted chat (command acknowledgements are in parentheses)."""
    return [line for line in stdout.split("\n") if line and not line.startswith("(")]


def test_run_streams_and_reports(model):
    r = run_cli(["run", "-m", model, "-p", "hello there", "--temp", "0", "-n", "12", "--verbose"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip(), "no answer on stdout"
    assert "decode 12 in" in r.stderr and "tok/s" in r.stderr and "peak RSS" in r.stderr, r.stderr


@pytest.mark.parametrize("flags", [
    ["--preset", "qa"], ["--preset", "creative"], ["--preset", "code"],
    ["--temp", "0.7", "--top-k", "20", "--top-p", "0.9", "--min-p", "0.05", "--typical-p", "0.95",
     "--repeat-penalty", "1.1", "--frequency-penalty", "0.2", "--presence-penalty", "0.1", "--seed", "7"],
    ["--mirostat", "2", "--mirostat-tau", "4", "--mirostat-eta", "0.2"],
    ["--mirostat", "1"],
    ["-t", "1", "--pin"],
    ["--cpus", "0"],
])
def test_run_accepts_sampling_settings(model, flags):
    r = run_cli(["run", "-m", model, "-p", "hi", "-n", "6", *flags])
    assert r.returncode == 0, f"{flags}: {r.stderr}"


@pytest.mark.parametrize("flags,named", [
    (["--preset", "bogus"], "bogus"),
    (["--top-p", "1.5"], "top_p"),
    (["--temp", "nan"], "temperature"),
    (["--mirostat", "3"], "mirostat"),
    (["--mirostat", "2", "--mirostat-tau", "0"], "mirostat_tau"),
    (["--cpus", "3-1"], "--cpus '3-1'"),
    (["--cpus", "64"], "--cpus '64'"),
])
def test_run_refuses_bad_settings_by_name(model, flags, named):
    r = run_cli(["run", "-m", model, "-p", "hi", "-n", "4", *flags])
    assert r.returncode != 0
    assert named in r.stderr, r.stderr


def test_run_answer_equals_first_chat_answer(model):
    r = run_cli(["run", "-m", model, "-p", "hello there", "--temp", "0", "-n", "10"], activations="int8")
    c = chat(model, ["hello there", "/quit"], "--temp", "0", "-n", "10")
    assert r.returncode == 0 and c.returncode == 0, r.stderr + c.stderr
    assert answers(c.stdout)[0] == r.stdout.strip("\n")


def test_save_reset_load_continues_the_conversation(model, tmp_path):
    saved = tmp_path / "conv.json"
    flags = ("--temp", "0", "-n", "10")
    straight = chat(model, ["hello there", "and then?", "/quit"], *flags)
    assert straight.returncode == 0, straight.stderr
    resumed = chat(model, ["hello there", f"/save {saved}", "/reset", f"/load {saved}", "and then?", "/quit"], *flags)
    assert resumed.returncode == 0, resumed.stderr
    assert f"(saved to {saved})" in resumed.stdout
    assert "(conversation cleared)" in resumed.stdout
    assert "(loaded 2 messages)" in resumed.stdout
    assert answers(resumed.stdout) == answers(straight.stdout)
    doc = json.loads(saved.read_text(encoding="utf-8"))
    assert [m["role"] for m in doc["messages"]] == ["user", "assistant"]
    assert doc["messages"][0]["content"] == "hello there"
    assert (tmp_path / "conv.json.kv").exists(), "the KV cache was not saved beside the conversation"

    # A fresh conversation after /reset answers as a new chat does.
    fresh = chat(model, ["hello there", "/reset", "hello there", "/quit"], *flags)
    a = answers(fresh.stdout)
    assert a[0] == a[1]


def test_load_of_a_bad_file_is_refused_and_the_chat_goes_on(model, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    c = chat(model, [f"/load {bad}", "/preset nonsense", "/frobnicate", "hello there", "/quit"], "--temp", "0", "-n", "5")
    assert c.returncode == 0, c.stderr
    assert "not a saved conversation" in c.stderr
    assert "unknown preset 'nonsense'" in c.stderr
    assert "unknown command /frobnicate" in c.stderr
    assert len(answers(c.stdout)) == 1


def _read_until(fd, needle: bytes, buf: bytearray, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while needle not in buf:
        left = end - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                return False
            if not chunk:
                return False
            buf += chunk
    return True


def test_ctrl_c_stops_the_answer_not_the_chat(model):
    master, slave = pty.openpty()
    proc = subprocess.Popen([str(edgellm_bin()), "chat", "-m", str(model), "--temp", "0", "-n", "100000",
                             "--ctx", "4096"], stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    buf = bytearray()
    try:
        assert _read_until(master, b"> ", buf, 60), f"no prompt: {bytes(buf)!r}"
        os.write(master, b"tell me a long story\r")
        mark = len(buf)
        # Wait for the echo plus some answer, then interrupt.
        assert _read_until(master, b"story", buf, 30), bytes(buf)
        deadline = time.monotonic() + 30
        while len(buf) < mark + 40 and time.monotonic() < deadline:
            _read_until(master, b"\x00never", buf, 0.05)
        proc.send_signal(signal.SIGINT)
        assert _read_until(master, b"(stopped)", buf, 30), f"no (stopped): {bytes(buf[-400:])!r}"
        stopped_at = buf.index(b"(stopped)")
        deadline = time.monotonic() + 30
        while buf.find(b"> ", stopped_at) < 0 and time.monotonic() < deadline:
            _read_until(master, b"\x00never", buf, 0.1)
        assert buf.find(b"> ", stopped_at) >= 0, f"no prompt after (stopped): {bytes(buf[-200:])!r}"
        assert proc.poll() is None, "Ctrl-C ended the chat"
        os.write(master, b"/quit\r")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
