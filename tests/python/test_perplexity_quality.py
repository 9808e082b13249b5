"""Quality of the quantization recipes on real trained weights (issue 7, "How it is checked" and "Goal"):
stories260K and the trained fixtures qwen2-tiny / qwen3-tiny / qwen35-tiny, KL to the f16 model over windows of
wiki.test.raw (`edgellm perplexity --kl-base`).

Checked per model:
  - the quality order in KL: 0 = KL(f16) <= KL(w8a8) <= KL(w4a16_g32) <= KL(w4a16); in PPL,
    PPL(f16) <= PPL(w8a8) <= PPL(w4a16_g32) <= PPL(w4a16) on the models in PPL_ORDERED (stories260K): on
    the trained fixtures the PPL differences between f16 and w8a8 are 0.001-0.03 against a standard error
    of 2-4, and which way they fall depends on the windows (over 8 windows w8a8 comes out below f16 on both;
    over 40, on qwen3-tiny only) although the KL order holds: their PPLs are printed, not asserted;
  - the error-minimising scale search (the default, no calibration) gives >= 10% lower KL than plain
    rounding to the same type (w4a16_g32 is IQ4_NL);
  - the goal of issue 7 against llama.cpp's own quantizers, KL(w4a16_g32) <= 0.8 x KL(Q4_0) and
    KL(w8a8) <= 0.8 x KL(Q8_0), for every variant listed in GOALS: the default (no calibration), GPTQ
    with the data-free calibration (`--calib self`: the model's own samples) and with a calibration text.
    llama.cpp's Q4_0/Q8_0 files are edgellm's `-q q4_0 --rtn` / `-q w8a8 --rtn` files: ggml's reference
    quantizers, byte for byte (test_gguf_interop.py checks that), so no llama-cpp-python is needed here;
    tools/quant_report.py measures llama.cpp's files themselves.
The calibration text is the last 5% of wiki.test.raw (from a line boundary): the evaluated windows (the
start of the file) never reach it and the fixtures did not train on it. EDGELLM_ACTIVATIONS=f32.
"""
from __future__ import annotations

import json

import pytest

from conftest import SHARED_DIR, SOURCE_DIR, run_cli

WIKI = SHARED_DIR / "data" / "text" / "wiki.test.raw"
MODELS = {
    "stories260K": (SHARED_DIR / "data" / "stories260K-hf", 40),
    "qwen2-tiny": (SOURCE_DIR / "tests" / "models" / "qwen2-tiny", 8),
    "qwen3-tiny": (SOURCE_DIR / "tests" / "models" / "qwen3-tiny", 8),
    "qwen35-tiny": (SOURCE_DIR / "tests" / "models" / "qwen35-tiny", 8),  # hybrid: calibration through the forward
}


# Models on which the PPL order is asserted (see the module docstring for the fixtures).
PPL_ORDERED = ("stories260K",)

# Ratios that must stay <= 0.8 (the goal) per model; the others are printed.
GOALS = {
    m: ("w4a16_g32 / Q4_0", "w4a16_g32 --calib self / Q4_0", "w4a16_g32 --calib text / Q4_0", "w8a8 / Q8_0",
        "w8a8 --calib self / Q8_0")
    for m in MODELS
}


@pytest.fixture(scope="module")
def calib_text(tmp_path_factory):
    if not WIKI.exists():
        pytest.fail(f"reference text absent: {WIKI} (tests/data/reference is unpacked into BUILD/reference when CMake configures the build)")
    raw = WIKI.read_bytes()
    cut = raw.index(b"\n", int(len(raw) * 0.95)) + 1
    p = tmp_path_factory.mktemp("calib") / "wiki-tail5.txt"
    p.write_bytes(raw[cut:])
    return p


def convert(hf_dir, out, *args):
    proc = run_cli(["convert", hf_dir, "-o", out, "--quiet", "-t", 2, *args], timeout=600)
    assert proc.returncode == 0, proc.stderr
    return out


def perplexity(model, base, chunks):
    proc = run_cli(["perplexity", "-m", model, "-f", WIKI, "--ctx", 256, "--chunks", chunks, "--kl-base", base,
                    "--json", "--quiet", "-t", 2], timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("name", list(MODELS))
def test_quality_order_search_gain_and_goal(name, tmp_path, calib_text):
    hf_dir, chunks = MODELS[name]
    if not (hf_dir / "config.json").exists():
        pytest.fail(f"model absent: {hf_dir} (tests/data/reference is unpacked into BUILD/reference when CMake configures the build)")
    variants = {
        "f16": ["-q", "f16"],
        "w8a8": ["-q", "w8a8"],
        "w8a8 self": ["-q", "w8a8", "--calib", "self"],
        "Q8_0 (rtn)": ["-q", "w8a8", "--rtn"],
        "w4a16_g32": ["-q", "w4a16_g32"],
        "w4a16_g32 self": ["-q", "w4a16_g32", "--calib", "self"],
        "w4a16_g32 calib": ["-q", "w4a16_g32", "--calib", calib_text],
        "w4a16_g32 rtn": ["-q", "w4a16_g32", "--rtn"],
        "Q4_0 (rtn)": ["-q", "q4_0", "--rtn"],
        "w4a16": ["-q", "w4a16"],
    }
    files = {k: convert(hf_dir, tmp_path / f"{i}.gguf", *v) for i, (k, v) in enumerate(variants.items())}
    r = {k: perplexity(f, files["f16"], chunks) for k, f in files.items()}
    for k, v in r.items():
        print(f"{name:12s} {k:22s} PPL {v['ppl']:9.4f} +/- {v['ppl_stderr']:.4f}  KL {v['kl']:.5f} +/- {v['kl_stderr']:.5f}")
    kl = {k: v["kl"] for k, v in r.items()}
    ratios = {
        "search / plain rounding (w4a16_g32)": kl["w4a16_g32"] / kl["w4a16_g32 rtn"],
        "w4a16_g32 / Q4_0": kl["w4a16_g32"] / kl["Q4_0 (rtn)"],
        "w4a16_g32 --calib self / Q4_0": kl["w4a16_g32 self"] / kl["Q4_0 (rtn)"],
        "w4a16_g32 --calib text / Q4_0": kl["w4a16_g32 calib"] / kl["Q4_0 (rtn)"],
        "w8a8 / Q8_0": kl["w8a8"] / kl["Q8_0 (rtn)"],
        "w8a8 --calib self / Q8_0": kl["w8a8 self"] / kl["Q8_0 (rtn)"],
    }
    for k, v in ratios.items():
        print(f"{name:12s} KL {k}: {v:.3f}")
    ppl = {k: v["ppl"] for k, v in r.items()}
    assert 0 <= kl["f16"] < 1e-9 and kl["w8a8"] <= kl["w4a16_g32"] <= kl["w4a16"], kl
    if name in PPL_ORDERED:
        assert ppl["f16"] <= ppl["w8a8"] <= ppl["w4a16_g32"] <= ppl["w4a16"], ppl
    assert ratios["search / plain rounding (w4a16_g32)"] <= 0.9, ratios
    for k in GOALS.get(name, ()):
        assert ratios[k] <= 0.8, (k, ratios[k])
