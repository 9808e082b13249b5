"""`edgellm bench` reports every figure of the board table (--json), and bench/compare_llamacpp.sh
fails with a clear message when llama_cpp cannot be imported, and prints one line per figure plus the
ratio line when it can (skipped when llama-cpp-python is not installed)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SOURCE_DIR, edgellm_bin, run_cli


@pytest.fixture(scope="module")
def synth_model(tmp_path_factory, bin_path):
    out = tmp_path_factory.mktemp("bench") / "tiny-q8.gguf"
    r = run_cli(["synth", "--preset", "tiny", "--type", "q8_0", "-o", out])
    assert r.returncode == 0, r.stderr
    return out


def test_bench_json_has_every_figure(synth_model):
    r = run_cli(["bench", "-m", synth_model, "-p", "7,33", "-n", "5", "-t", "2", "-r", "2", "--json", "--roofline"])
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for key in ("load_s", "peak_rss_mib", "threads", "bandwidth_gbs", "decode_limit_tps", "weight_bytes_per_token",
                "kv_type", "n_ctx", "model_file_mib"):
        assert key in out, key
    assert out["threads"] == 2 and out["n_ctx"] == 38 and out["bandwidth_gbs"] > 0
    assert [(x["input"], x["output"]) for x in out["results"]] == [(7, 5), (33, 5)]
    for x in out["results"]:
        assert x["ttft_ms_min"] <= x["ttft_ms"] <= x["ttft_ms_max"]
        assert x["prefill_tps_min"] <= x["prefill_tps"] <= x["prefill_tps_max"]
        assert x["decode_tps_min"] <= x["decode_tps"] <= x["decode_tps_max"]
        assert 0 < x["decode_fraction_of_limit"]


def test_bench_table_and_context_flags(synth_model):
    r = run_cli(["bench", "-m", synth_model, "-p", "9", "-n", "3", "-r", "1", "-c", "100"])
    assert r.returncode == 0, r.stderr
    assert "input" in r.stdout and "TTFT ms" in r.stdout and "peak RSS" in r.stdout
    r = run_cli(["bench", "-m", synth_model, "-p", "90", "-n", "20", "-r", "1", "-c", "100"])
    assert r.returncode != 0 and "--ctx 100 is smaller" in r.stderr


def test_bench_thread_placement_flags(synth_model):
    # --cpus 0: one thread (one per listed CPU), pinned to CPU 0 (every Linux machine has a CPU 0 in its
    # mask unless a taskset took it away: then the pool falls back to any CPU and still runs).
    r = run_cli(["bench", "-m", synth_model, "-p", "5", "-n", "2", "-r", "1", "--cpus", "0", "--json"])
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["threads"] == 1
    r = run_cli(["bench", "-m", synth_model, "-p", "5", "-n", "2", "-r", "1", "-t", "2", "--pin", "--json"])
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["threads"] == 2
    r = run_cli(["bench", "-m", synth_model, "-p", "5", "-n", "2", "--cpus", "x"])
    assert r.returncode != 0 and "edgellm bench: --cpus 'x'" in r.stderr


def test_bench_parallel_drives_the_engine(synth_model):
    r = run_cli(["bench", "-m", synth_model, "-p", "12", "-n", "6", "-r", "1", "-t", "2", "--parallel", "1,3",
                 "--json"])
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [(x["parallel"], x["input"], x["output"]) for x in out["results"]] == [(1, 12, 6), (3, 12, 6)]
    for x in out["results"]:
        assert x["decode_tps"] > 0 and x["output_tps"] > 0
        assert 0 < x["ttft_ms_p50"] <= x["ttft_ms_p99"]
        assert 0 < x["tpot_ms_p50"] <= x["tpot_ms_p99"]
        assert x["preemptions"] == 0
    assert out["kv_pool_mib"] > 0 and out["peak_rss_mib"] > out["model_file_mib"]
    # A shared prefix: after the first request, the others take its blocks from the cache.
    r = run_cli(["bench", "-m", synth_model, "-p", "4", "-n", "3", "-r", "1", "--parallel", "3",
                 "--shared-prefix", "40", "--json"])
    assert r.returncode == 0, r.stderr
    x = json.loads(r.stdout)["results"][0]
    assert x["cached_tokens_per_run"] == 2 * 32 and x["first_ttft_ms"] > 0
    # The KV budget is the pool's size.
    r = run_cli(["bench", "-m", synth_model, "-p", "60", "-n", "40", "-r", "1", "--parallel", "3", "--kv-mem", "1",
                 "--json"])
    assert r.returncode == 0, r.stderr
    assert 0.9 < json.loads(r.stdout)["kv_pool_mib"] <= 1.0
    r = run_cli(["bench", "-m", synth_model, "-p", "5", "-n", "2", "--parallel", "0"])
    assert r.returncode != 0 and "--parallel takes" in r.stderr
    r = run_cli(["bench", "-m", synth_model, "-p", "5", "-n", "2", "--parallel", "2", "--roofline"])
    assert r.returncode != 0 and "--roofline" in r.stderr


def test_bench_reports_the_cost_of_a_grammar(synth_model, tmp_path):
    """--json-schema / --grammar decode under a grammar and report its cost per token (the tiny synthetic
    vocabulary spells JSON byte by byte)."""
    schema = SOURCE_DIR / "bench" / "grammar" / "tool_call.json"
    r = run_cli(["bench", "-m", synth_model, "-p", "8", "-n", "40", "-r", "2", "-t", "2", "--json-schema", schema, "--json"])
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["grammar_ms_per_token"] > 0 and out["grammar_ms_per_token_first_run"] > 0
    assert 0 < out["grammar_fraction_of_decode_step"] < 100
    r = run_cli(["bench", "-m", synth_model, "-p", "8", "-n", "10", "-r", "1", "--grammar",
                 SOURCE_DIR / "bench" / "grammar" / "free_text_answer.gbnf"])
    assert r.returncode == 0, r.stderr
    assert "grammar:" in r.stdout and "ms per token" in r.stdout
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "object", "properties": {"x": {"pattern": "a"}}}')
    r = run_cli(["bench", "-m", synth_model, "-p", "8", "-n", "4", "-r", "1", "--json-schema", bad])
    assert r.returncode != 0 and "'pattern' is not supported" in r.stderr
    r = run_cli(["bench", "-m", synth_model, "-p", "8", "-n", "4", "--parallel", "2", "--json-schema", schema])
    assert r.returncode != 0 and "without --parallel" in r.stderr


def test_compare_script_without_llama_cpp(synth_model, tmp_path):
    # A Python that cannot import llama_cpp: the system one with an empty module path in front.
    fake = tmp_path / "llama_cpp.py"
    fake.write_text("raise ImportError('not installed (test)')\n")
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=str(tmp_path), EDGELLM_BIN=str(edgellm_bin()))
    r = subprocess.run([str(SOURCE_DIR / "bench" / "compare_llamacpp.sh"), str(synth_model), "-t", "1"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode != 0
    assert "llama_cpp is not importable" in r.stderr and "setup_llama_cpp.sh" in r.stderr


def test_compare_script_prints_ratios(synth_model):
    pytest.importorskip("llama_cpp")
    env = dict(os.environ, EDGELLM_BIN=str(edgellm_bin()))
    r = subprocess.run([str(SOURCE_DIR / "bench" / "compare_llamacpp.sh"), str(synth_model), "-t", "2", "-p", "16",
                        "-n", "4", "-r", "1"], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[-1].startswith("prefill_ratio=") and " decode_ratio=" in lines[-1]
    assert any(l.startswith("p16_n4 prefill_tok_s") and "llama.cpp=" in l for l in lines)
