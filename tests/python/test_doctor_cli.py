"""`edgellm doctor` as a user and a script see it: the text and JSON reports on the fake board trees of
tests/data/doctor/, the exit status (1 when a check fails), a model's checks with the bandwidth probe on this
machine, and bad input (clear message, never a crash)."""
import json
import os
import subprocess

import pytest

BIN = os.environ.get("EDGELLM_BIN", "")
DATA = os.environ.get("EDGELLM_TEST_DATA", os.path.join(os.path.dirname(__file__), "../data"))


@pytest.fixture(autouse=True)
def need_bin():
    if not BIN or not os.path.exists(BIN):
        pytest.skip("EDGELLM_BIN is not set to the edgellm executable (run through ctest)")


def doctor(*args):
    return subprocess.run([BIN, "doctor", *args], capture_output=True, text=True, timeout=120)


def tree(name):
    return os.path.join(DATA, "doctor", name)


def test_good_board_text_report_exits_0():
    out = doctor("--sysroot", tree("rk3576-board"))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any(l.startswith("OK") and "cpu.layout" in l and "edgellm runs 4 threads, on cpu4-7" in l for l in lines)
    assert "0 WARN, 0 FAIL" in lines[-1]


def test_misconfigured_board_json_and_exit_status():
    out = doctor("--sysroot", tree("misconfigured-board"), "--json")
    assert out.returncode == 1, "a failed check (throttling) must make the exit status 1"
    report = json.loads(out.stdout)
    assert report["fail"] == 2 and report["warn"] >= 10
    by_id = {}
    for c in report["checks"]:
        assert set(c) == {"id", "status", "summary", "fix"}
        assert c["status"] in ("OK", "WARN", "FAIL", "SKIP")
        if c["status"] in ("WARN", "FAIL"):
            assert c["fix"], f"{c['id']} has no fix"
        by_id.setdefault(c["id"], []).append(c)
    assert by_id["vm.swappiness"][0]["fix"].startswith("sudo sysctl -w vm.swappiness=10")
    assert any("policy4/scaling_governor" in c["fix"] for c in by_id["cpu.governor"])


def test_model_checks_with_the_bandwidth_probe(tmp_path):
    model = tmp_path / "tiny.gguf"
    subprocess.run([BIN, "synth", "--preset", "tiny", "--type", "q8_0", "-o", str(model)], check=True,
                   capture_output=True, timeout=120)
    out = doctor("--sysroot", tree("rk3576-board"), "-m", str(model), "--ctx", "2048", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    checks = {c["id"]: c for c in json.loads(out.stdout)["checks"]}
    assert checks["model.file"]["status"] == "OK" and "qwen2" in checks["model.file"]["summary"]
    assert checks["model.tokenizer"]["status"] == "OK"
    assert "2048 positions" in checks["model.memory"]["summary"]
    # The probe ran on this machine: a positive bandwidth and an expected speed.
    speed = checks["model.speed"]
    assert speed["status"] == "OK" and " GB/s" in speed["summary"] and "tokens/s" in speed["summary"]


def test_bad_input_is_named():
    out = doctor("-m", "/nonexistent/model.gguf", "--no-bandwidth", "--sysroot", tree("rk3576-board"))
    assert out.returncode == 1
    assert "FAIL" in out.stdout and "/nonexistent/model.gguf" in out.stdout
    out = doctor("--kv-type", "q3", "--sysroot", tree("rk3576-board"))
    assert out.returncode != 0 and "--kv-type must be f16 or q8_0" in out.stderr
    out = doctor("--ctx", "0")
    assert out.returncode != 0 and "ctx" in out.stderr
    # A root with nothing in it: everything skipped, nothing failed.
    out = doctor("--sysroot", "/nonexistent-root", "--json")
    assert out.returncode == 0
    report = json.loads(out.stdout)
    assert report["fail"] == 0 and report["skip"] >= 10
