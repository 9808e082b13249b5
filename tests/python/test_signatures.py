"""Signed model files against the real `minisign` (Debian's): it verifies what `edgellm sign` wrote, edgellm
verifies what `minisign -S` wrote, and every loader refuses a model whose signature is missing or wrong when a
public key is required (--require-signature, EDGELLM_REQUIRE_SIGNATURE)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from conftest import SOURCE_DIR, edgellm_bin, run_cli

MINISIGN = shutil.which("minisign")
if MINISIGN is None:
    pytest.skip("minisign is not installed (scripts/setup.sh installs it)", allow_module_level=True)

MODEL_DIR = SOURCE_DIR / "tests" / "models" / "qwen2-tiny"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """The trained fixture as one GGUF file (signatures cover a file)."""
    out = tmp_path_factory.mktemp("signed") / "qwen2-tiny.gguf"
    r = run_cli(["convert", MODEL_DIR, "-o", out, "-q", "f16"])
    assert r.returncode == 0, r.stderr
    return out


def minisign(*args, check=True):
    r = subprocess.run([MINISIGN, *[str(a) for a in args]], capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def flipped_copy(src, dst, offset=200):
    data = bytearray(src.read_bytes())
    data[offset] ^= 1
    dst.write_bytes(bytes(data))


def test_minisign_verifies_edgellm_signatures(model, tmp_path):
    r = run_cli(["keygen", "-s", tmp_path / "edgellm.key", "-p", tmp_path / "edgellm.pub"])
    assert r.returncode == 0, r.stderr
    assert oct((tmp_path / "edgellm.key").stat().st_mode & 0o777) == "0o600"
    r = run_cli(["keygen", "-s", tmp_path / "edgellm.key", "-p", tmp_path / "edgellm.pub"])
    assert r.returncode != 0 and "--force" in r.stderr  # never overwrites a key silently
    r = run_cli(["sign", model, "-s", tmp_path / "edgellm.key", "-t", "edgellm test release"])
    assert r.returncode == 0, r.stderr
    out = minisign("-V", "-m", model, "-p", tmp_path / "edgellm.pub")
    assert "edgellm test release" in out.stdout
    # minisign rejects the same signature for a changed file.
    # minisign signs with edgellm's secret key file too.
    minisign("-S", "-s", tmp_path / "edgellm.key", "-m", model, "-x", tmp_path / "by-minisign.minisig")
    r = run_cli(["verify", model, "--pubkey", tmp_path / "edgellm.pub", "-x", tmp_path / "by-minisign.minisig"])
    assert r.returncode == 0, r.stderr
    bad = tmp_path / "bad.gguf"
    flipped_copy(model, bad)
    assert minisign("-V", "-m", bad, "-x", f"{model}.minisig", "-p", tmp_path / "edgellm.pub", check=False).returncode != 0


def test_edgellm_verifies_minisign_signatures(model, tmp_path):
    copy = tmp_path / "model.gguf"
    shutil.copy(model, copy)
    minisign("-G", "-W", "-p", tmp_path / "m.pub", "-s", tmp_path / "m.key")
    minisign("-S", "-s", tmp_path / "m.key", "-m", copy, "-t", "signed by minisign")
    r = run_cli(["verify", copy, "--pubkey", tmp_path / "m.pub"])
    assert r.returncode == 0, r.stderr
    assert "signature: ok" in r.stdout and "signed by minisign" in r.stdout
    # minisign's legacy (non-prehashed) form too.
    minisign("-S", "-l", "-s", tmp_path / "m.key", "-m", copy, "-x", tmp_path / "legacy.minisig")
    r = run_cli(["verify", copy, "--pubkey", tmp_path / "m.pub", "-x", tmp_path / "legacy.minisig"])
    assert r.returncode == 0, r.stderr
    # edgellm signs with minisign's (unencrypted) secret key, and minisign agrees.
    r = run_cli(["sign", copy, "-s", tmp_path / "m.key", "-o", tmp_path / "by-edgellm.minisig"])
    assert r.returncode == 0, r.stderr
    minisign("-V", "-m", copy, "-x", tmp_path / "by-edgellm.minisig", "-p", tmp_path / "m.pub")


def test_required_signatures_refuse_unsigned_and_tampered_models(model, tmp_path):
    signed = tmp_path / "model.gguf"
    shutil.copy(model, signed)
    minisign("-G", "-W", "-p", tmp_path / "k.pub", "-s", tmp_path / "k.key")
    minisign("-S", "-s", tmp_path / "k.key", "-m", signed)
    pub = tmp_path / "k.pub"
    r = run_cli(["run", "-m", signed, "-p", "Hello", "-n", "4", "--require-signature", pub])
    assert r.returncode == 0, r.stderr

    unsigned = tmp_path / "unsigned.gguf"
    shutil.copy(model, unsigned)
    r = run_cli(["run", "-m", unsigned, "-p", "Hello", "-n", "4", "--require-signature", pub])
    assert r.returncode != 0 and "not signed" in r.stderr

    tampered = tmp_path / "tampered.gguf"
    flipped_copy(model, tampered, offset=os.path.getsize(model) - 1000)  # a weight byte, not the header
    shutil.copy(f"{signed}.minisig", f"{tampered}.minisig")
    for cmd in (["run", "-m", tampered, "-p", "Hello", "-n", "4"], ["bench", "-m", tampered, "-p", "4", "-n", "2", "-r", "1"],
                ["serve", "-m", tampered, "--port", "0"]):
        r = run_cli(cmd + ["--require-signature", pub], timeout=120)
        assert r.returncode != 0, cmd
        assert "signature check failed: the signature does not match the file's contents" in r.stderr, r.stderr
    r = run_cli(["verify", tampered, "--pubkey", pub])
    assert r.returncode != 0 and "does not match the file's contents" in r.stderr

    # The board-wide policy: every program that loads through libedgellm (RKLLM applications included).
    env = dict(os.environ, EDGELLM_REQUIRE_SIGNATURE=str(pub))
    r = subprocess.run([str(edgellm_bin()), "run", "-m", str(unsigned), "-p", "Hi", "-n", "2"], capture_output=True,
                       text=True, timeout=120, env=env)
    assert r.returncode != 0 and "not signed" in r.stderr
    r = subprocess.run([str(edgellm_bin()), "run", "-m", str(signed), "-p", "Hi", "-n", "2"], capture_output=True,
                       text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
