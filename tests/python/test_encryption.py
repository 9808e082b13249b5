"""Model files encrypted at rest, end to end through the command line: keys, encrypt/decrypt, every loader
reading the encrypted file directly with the key from --key-file, the environment or a systemd credential
directory, damaged files and wrong keys refused with a message, and encryption together with signatures
(the real `minisign` verifies a signed encrypted file)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from conftest import SOURCE_DIR, edgellm_bin, run_cli
from edgellm_server import EdgellmServer

MODEL_DIR = SOURCE_DIR / "tests" / "models" / "qwen2-tiny"
PROMPT = "Once upon a time"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The trained fixture as Q4_0 GGUF (repacked at load, so decrypted pages are released), its key and the
    encrypted copy."""
    d = tmp_path_factory.mktemp("enc")
    plain = d / "tiny.gguf"
    r = run_cli(["convert", MODEL_DIR, "-o", plain, "-q", "q4_0"])
    assert r.returncode == 0, r.stderr
    key = d / "model.key"
    r = run_cli(["keygen", "--encryption-key", key])
    assert r.returncode == 0, r.stderr
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    enc = d / "tiny.gguf.enc"
    r = run_cli(["encrypt", plain, "--key-file", key])
    assert r.returncode == 0, r.stderr
    assert enc.exists() and enc.read_bytes()[:12] == b"edgellm-enc\n"
    return plain, key, enc


def edgellm(args, env=None, timeout=120):
    full = dict(os.environ, EDGELLM_ACTIVATIONS="int8")
    for name in ("EDGELLM_MODEL_KEY", "EDGELLM_MODEL_KEY_FILE", "CREDENTIALS_DIRECTORY"):
        full.pop(name, None)
    full.update(env or {})
    return subprocess.run([str(edgellm_bin()), *[str(a) for a in args]], capture_output=True, text=True,
                          timeout=timeout, env=full, stdin=subprocess.DEVNULL)


def greedy(model, *extra, env=None):
    r = edgellm(["run", "-m", model, "-p", PROMPT, "-n", "24", "--temp", "0", *extra], env=env)
    assert r.returncode == 0, r.stderr
    return r.stdout


def key_line(key):
    return key.read_text().splitlines()[1]


def test_every_key_source_gives_the_plain_models_output(files, tmp_path):
    plain, key, enc = files
    expected = greedy(plain)
    assert expected.strip()
    assert greedy(enc, "--key-file", key) == expected
    assert greedy(enc, env={"EDGELLM_MODEL_KEY_FILE": str(key)}) == expected
    assert greedy(enc, env={"EDGELLM_MODEL_KEY": key_line(key)}) == expected
    creds = tmp_path / "credentials"
    creds.mkdir()
    shutil.copy(key, creds / "edgellm-model-key")
    assert greedy(enc, env={"CREDENTIALS_DIRECTORY": str(creds)}) == expected
    # Chat reads the same file (the chat template comes from the decrypted file, never re-read by path).
    r = edgellm(["chat", "-m", enc, "--key-file", key, "-n", "8", "--temp", "0"], timeout=120)
    assert r.returncode == 0, r.stderr


def test_without_the_right_key_nothing_loads(files, tmp_path):
    plain, key, enc = files
    for cmd in (["run", "-m", enc, "-p", "Hi", "-n", "2"], ["bench", "-m", enc, "-p", "4", "-n", "2", "-r", "1"],
                ["serve", "-m", enc, "--port", "0"], ["verify", enc], ["inspect", enc]):
        r = edgellm(cmd)
        assert r.returncode != 0, cmd
        assert "an encrypted model file: give its key (--key-file" in r.stderr, (cmd, r.stderr)
    other = tmp_path / "other.key"
    assert edgellm(["keygen", "--encryption-key", other]).returncode == 0
    r = edgellm(["run", "-m", enc, "--key-file", other, "-p", "Hi", "-n", "2"])
    assert r.returncode != 0 and "encrypted with another key" in r.stderr, r.stderr
    bad_key = tmp_path / "bad.key"
    bad_key.write_text("not a key\n")
    r = edgellm(["run", "-m", enc, "--key-file", bad_key, "-p", "Hi", "-n", "2"])
    assert r.returncode != 0 and "not a model key" in r.stderr, r.stderr


def test_damaged_files_are_errors_never_answers(files, tmp_path):
    plain, key, enc = files
    data = enc.read_bytes()
    size = len(data)
    cases = {
        "flip-header": (lambda b: b[:20] + bytes([b[20] ^ 1]) + b[21:], "fails authentication"),  # header = associated data
        "flip-version": (lambda b: b[:16] + bytes([b[16] ^ 2]) + b[17:], "encrypted-file version 3"),
        "flip-weights": (lambda b: b[:size - 5000] + bytes([b[size - 5000] ^ 0x40]) + b[size - 4999:], "fails authentication"),
        "flip-last-mac": (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "fails authentication"),
        "truncated": (lambda b: b[:size // 2], "truncated"),
        "extended": (lambda b: b + b"\0", "unexpected bytes after the last chunk"),
    }
    for name, (damage, message) in cases.items():
        bad = tmp_path / f"{name}.enc"
        bad.write_bytes(damage(data))
        for cmd in (["run", "-m", bad, "-p", "Hi", "-n", "2"], ["verify", bad], ["decrypt", bad, "-o", tmp_path / "out.gguf"]):
            r = edgellm(cmd + ["--key-file", key])
            assert r.returncode != 0, (name, cmd)
            assert message in r.stderr, (name, cmd, r.stderr)
        assert not (tmp_path / "out.gguf").exists() and not (tmp_path / "out.gguf.tmp").exists()


def test_decrypt_verify_inspect_and_the_cli_guards(files, tmp_path):
    plain, key, enc = files
    out = tmp_path / "back.gguf"
    r = edgellm(["decrypt", enc, "-o", out, "--key-file", key])
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == plain.read_bytes()
    r = edgellm(["decrypt", enc, "-o", out, "--key-file", key])
    assert r.returncode != 0 and "--force" in r.stderr
    r = edgellm(["verify", enc, "--key-file", key])
    assert r.returncode == 0, r.stderr
    assert "encrypted: ok" in r.stdout and "content:   ok" in r.stdout and "model:     ok" in r.stdout
    r = edgellm(["inspect", enc, "--key-file", key, "--no-tensors", "--no-metadata"])
    assert r.returncode == 0, r.stderr
    assert "encrypted" in r.stdout and "qwen2" in r.stdout
    # encrypt refuses what it should not encrypt.
    r = edgellm(["encrypt", enc, "-o", tmp_path / "twice.enc", "--key-file", key])
    assert r.returncode != 0 and "already encrypted" in r.stderr
    r = edgellm(["encrypt", MODEL_DIR, "--key-file", key])
    assert r.returncode != 0
    r = edgellm(["encrypt", MODEL_DIR / "config.json", "-o", tmp_path / "c.enc", "--key-file", key])
    assert r.returncode != 0 and "not a GGUF file" in r.stderr
    r = edgellm(["encrypt", plain, "-o", plain, "--key-file", key, "--force"])
    assert r.returncode != 0 and "is the input file" in r.stderr
    r = edgellm(["encrypt", plain, "-o", tmp_path / "x.enc"])
    assert r.returncode != 0 and "no model key given" in r.stderr


def test_a_signed_encrypted_model(files, tmp_path):
    """Encrypt, then sign the encrypted file: the board checks the signature before it decrypts."""
    plain, key, enc = files
    signed = tmp_path / "model.enc"
    shutil.copy(enc, signed)
    assert edgellm(["keygen", "-s", tmp_path / "r.key", "-p", tmp_path / "r.pub"]).returncode == 0
    assert edgellm(["sign", signed, "-s", tmp_path / "r.key"]).returncode == 0
    minisign = shutil.which("minisign")
    if minisign:
        r = subprocess.run([minisign, "-V", "-m", str(signed), "-p", str(tmp_path / "r.pub")], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
    assert greedy(signed, "--key-file", key, "--require-signature", tmp_path / "r.pub") == greedy(plain)
    r = edgellm(["verify", signed, "--pubkey", tmp_path / "r.pub", "--key-file", key])
    assert r.returncode == 0 and "signature: ok" in r.stdout and "encrypted: ok" in r.stdout, r.stdout + r.stderr


def test_serve_answers_from_an_encrypted_model(files):
    plain, key, enc = files
    body = {"model": "tiny", "messages": [{"role": "user", "content": "Tell me a story."}], "max_tokens": 12,
            "temperature": 0}
    answers = []
    for model, extra in ((plain, []), (enc, ["--key-file", key])):
        with EdgellmServer(["-m", model, "--alias", "tiny", "-t", "2", *extra], env={"EDGELLM_ACTIVATIONS": "int8"}) as srv:
            status, reply = srv.post("/v1/chat/completions", body)
            assert status == 200, reply
            answers.append(json.loads(reply)["choices"][0]["message"]["content"])
    assert answers[0] == answers[1] and answers[0]
