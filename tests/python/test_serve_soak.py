"""Soak (bench/serve_soak.py): 64 clients for 30 s against `edgellm serve` on a Qwen2.5-0.5B-shaped model
(seeded weights): no 5xx but the intended 503s of a full queue, no crash, resident memory after the run
within 5% of what it was after a 10 s warm-up, and exit status 0 on SIGTERM."""

import subprocess
import sys

import pytest

from conftest import SOURCE_DIR, edgellm_bin, run_cli

pytest.importorskip("httpx")


# The test's share of the CI budget; `bench/serve_soak.py --seconds 600` soaks for longer.
def test_64_clients_for_30_seconds(tmp_path):
    model = tmp_path / "qwen2.5-0.5b-q4_0.gguf"
    r = run_cli(["synth", "--preset", "qwen2.5-0.5b", "--type", "q4_0", "-o", model])
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, str(SOURCE_DIR / "bench" / "serve_soak.py"), "--edgellm", str(edgellm_bin()),
                        "--gguf", str(model), "--clients", "64", "--seconds", "30", "--warmup", "10",
                        "--log", str(tmp_path / "serve.log")], capture_output=True, text=True, timeout=600)
    print(r.stdout)
    assert r.returncode == 0 and r.stdout.rstrip().endswith("PASS"), r.stdout + r.stderr + \
        (tmp_path / "serve.log").read_text()[-3000:]
