"""`edgellm convert` / `edgellm quantize` on tiny random Hugging Face models of every architecture
(tests/python/tiny_models.py): every recipe converts, loads and runs with logits near the f32 model's;
the f16 conversion equals the HF-directory load; bad inputs fail with a clear message and leave no file
behind, also when the write itself fails. The tokenizer is stories260K's (512 pieces, every tiny model
has >= 512 embedding rows); from tests/data/reference.
"""
from __future__ import annotations

import json
import resource
import shutil
import signal

import numpy as np
import pytest

from conftest import SHARED_DIR, rel_err_rows, run_cli, run_generate
import tiny_models as tm

TOKENIZER_DIR = SHARED_DIR / "data" / "stories260K-hf"


@pytest.fixture(autouse=True, scope="module")
def _reference_data():
    if not (TOKENIZER_DIR / "tokenizer.json").exists():
        pytest.fail(f"reference tokenizer absent: {TOKENIZER_DIR} (tests/data/reference is unpacked by CMake)")

ARCHS = ["qwen2", "qwen3", "llama", "qwen1"]
# Largest relative logits error (max|a-b| / max|b| per row) against the f32 model, per recipe. Random
# tiny models are harder than trained ones (no redundancy); bounds are ~2x the measured values.
RECIPES = {"f16": 5e-3, "bf16": 5e-2, "w8a8": 5e-2, "q4_1": 0.35, "q4_0": 0.4, "w4a16_g32": 0.4, "w4a16_g64": 0.4,
           "w4a16_g128": 0.4, "w4a16": 0.4}
PROMPT = [1, 17, 300, 42, 511, 0, 99, 7]


def hf_dir(tmp_path_factory, name: str, dtype=None):
    import torch
    spec = tm.SPECS[name]
    d = tmp_path_factory.mktemp(f"hf-{name}")
    tm.save_for_edgellm(spec, tm.make_model(spec), d, dtype or torch.float32)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(TOKENIZER_DIR / f, d / f)
    return d


@pytest.fixture(scope="module", params=ARCHS)
def model_dir(request, tmp_path_factory):
    return hf_dir(tmp_path_factory, request.param)


def convert(src, out, *extra):
    return run_cli(["convert", src, "-o", out, "--quiet", *extra])


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_every_recipe_converts_loads_and_runs(model_dir, recipe, tmp_path):
    out = tmp_path / f"{recipe}.gguf"
    proc = convert(model_dir, out, "-q", recipe)
    assert proc.returncode == 0, proc.stderr
    ref = run_generate(model_dir, PROMPT, 4, tmp_path)
    got = run_generate(out, PROMPT, 4, tmp_path)
    err = rel_err_rows(got.logits[:len(PROMPT)], ref.logits[:len(PROMPT)]).max()
    print(f"\n{model_dir.name} {recipe}: prefill logits rel err {err:.3e} (bound {RECIPES[recipe]})")
    assert err <= RECIPES[recipe]


def test_f16_conversion_equals_hf_directory_load(tmp_path_factory, tmp_path):
    import torch
    for name in ("qwen2", "qwen3", "qwen1", "llama"):
        src = hf_dir(tmp_path_factory, name, torch.float16)
        out = tmp_path / f"{name}.gguf"
        assert convert(src, out, "-q", "f16").returncode == 0
        a = run_generate(src, PROMPT, 4, tmp_path).logits
        b = run_generate(out, PROMPT, 4, tmp_path).logits
        if name == "llama":
            # q/k rows are permuted for llama.cpp's interleaved rope: same values, other summation order.
            assert rel_err_rows(b, a).max() < 1e-5
        else:
            assert np.array_equal(a, b), f"{name}: f16 GGUF differs from the f16 HF directory"


def gguf_scalars(path, prefix):
    import gguf
    r = gguf.GGUFReader(str(path))
    out = {}
    for name, f in r.fields.items():
        if name.startswith(prefix):
            v = f.parts[f.data[0]] if len(f.data) == 1 else [f.parts[i][0] for i in f.data]
            out[name] = round(float(v[0]), 6) if len(f.data) == 1 else [int(x) for x in v]
    return out


def test_generation_config_becomes_sampling_defaults(tmp_path_factory, tmp_path):
    src = hf_dir(tmp_path_factory, "qwen2")
    gen = {"do_sample": True, "temperature": 0.7, "top_p": 0.8, "top_k": 20, "repetition_penalty": 1.05,
           "eos_token_id": [2, 5]}
    (src / "generation_config.json").write_text(json.dumps(gen))
    out = tmp_path / "sampling.gguf"
    assert convert(src, out, "-q", "f16").returncode == 0
    assert gguf_scalars(out, "general.sampling.") == {
        "general.sampling.temp": 0.7, "general.sampling.top_p": 0.8, "general.sampling.top_k": 20,
        "general.sampling.penalty_repeat": 1.05}
    assert gguf_scalars(out, "edgellm.generation.") == {"edgellm.generation.eos_token_ids": [2, 5]}
    # do_sample: false is greedy in transformers (temperature and truncations ignored): temp 0 here.
    (src / "generation_config.json").write_text(json.dumps({**gen, "do_sample": False}))
    greedy = tmp_path / "greedy.gguf"
    assert convert(src, greedy, "-q", "f16").returncode == 0
    assert gguf_scalars(greedy, "general.sampling.") == {"general.sampling.temp": 0.0,
                                                         "general.sampling.penalty_repeat": 1.05}
    # The runtime takes them as its defaults: the greedy file answers the same for any seed; the sampling
    # one (top-k 20 of a random model's flat distribution) differs between seeds.
    def answer(model, seed):
        r = run_cli(["run", "-m", model, "-p", "Once", "--raw", "-n", 12, "--seed", seed])
        assert r.returncode == 0, r.stderr
        return r.stdout
    assert answer(greedy, 1) == answer(greedy, 2)
    assert answer(out, 1) != answer(out, 2)


def test_quantize_command_requantizes_and_rewrites_metadata(model_dir, tmp_path):
    f16 = tmp_path / "f16.gguf"
    assert convert(model_dir, f16, "-q", "f16").returncode == 0
    for recipe in ("w4a16_g32", "w4a16_g128"):
        out = tmp_path / f"{recipe}.gguf"
        proc = run_cli(["quantize", f16, "-o", out, "-q", recipe, "--quiet"])
        assert proc.returncode == 0, proc.stderr
        direct = tmp_path / f"direct-{recipe}.gguf"
        assert convert(model_dir, direct, "-q", recipe).returncode == 0
        # `edgellm inspect`, not the gguf package: it rejects the edgellm-only type ids, as it should.
        info = run_cli(["inspect", out]).stdout
        assert f'edgellm.quant.recipe                         "{recipe}"' in info
        assert "edgellm.quant.source" in info and "edgellm.content.sha256" in info
        assert ("edgellm.quant.edgellm_only_types" in info) == (recipe != "w4a16_g32")
        # f16 -> recipe equals HF f32 -> recipe up to the f16 rounding of the source.
        a = run_generate(out, PROMPT, 2, tmp_path).logits
        b = run_generate(direct, PROMPT, 2, tmp_path).logits
        assert rel_err_rows(a[:len(PROMPT)], b[:len(PROMPT)]).max() < 0.2  # prefill rows: same inputs
    again = tmp_path / "again.gguf"
    proc = run_cli(["quantize", tmp_path / "w4a16_g32.gguf", "-o", again, "-q", "w8a8"])
    assert proc.returncode == 1 and "re-quantize from an f32, f16 or bf16 file" in proc.stderr
    assert not again.exists()


@pytest.mark.parametrize("command", ["convert", "quantize"])
def test_calibration_modes_record_their_method(model_dir, tmp_path, command):
    """--calib self (GPTQ on the model's own samples), a text (GPTQ), --no-gptq, none: each runs, is
    recorded in the metadata, and gives logits near the f32 model's (same bound as the recipe test)."""
    text = tmp_path / "calib.txt"
    text.write_text("Once upon a time there was a little dog. It liked to play in the sun. " * 40)
    f16 = tmp_path / "f16.gguf"
    assert convert(model_dir, f16, "-q", "f16").returncode == 0
    f32 = tmp_path / "f32.gguf"
    assert convert(model_dir, f32, "-q", "f32").returncode == 0
    ref = run_generate(f32, PROMPT, 2, tmp_path).logits
    for calib, extra, method in (("self", [], "gptq+search+calib"), (text, [], "gptq+search+calib"),
                                 (text, ["--no-gptq"], "search+calib"), ("none", [], "search")):
        out = tmp_path / "q.gguf"
        src = model_dir if command == "convert" else f16
        proc = run_cli([command, src, "-o", out, "-q", "w4a16_g32", "--quiet", "--calib", calib, *extra])
        assert proc.returncode == 0, proc.stderr
        info = run_cli(["inspect", out]).stdout
        assert f'edgellm.quant.method                         "{method}"' in info, (calib, extra, info)
        if calib == "self":
            assert "self-generated: 2048 tokens" in info
        got = run_generate(out, PROMPT, 2, tmp_path).logits
        n = len(PROMPT)  # prefill rows: same inputs (the decode row follows each model's own greedy id)
        assert rel_err_rows(got[:n], ref[:n]).max() < RECIPES["w4a16_g32"], (calib, extra)


def test_missing_calibration_text(good_dir, tmp_path):
    expect_failure(good_dir, tmp_path, "no-such.txt", "cannot read the calibration text",
                   extra=("-q", "w4a16_g32", "--calib", str(tmp_path / "no-such.txt")))


# ---- unhappy paths: clear error, exit 1, nothing left behind ----

@pytest.fixture()
def good_dir(tmp_path_factory):
    return hf_dir(tmp_path_factory, "qwen2")


def expect_failure(src, tmp_path, *needles, extra=()):
    out = tmp_path / "out" / "model.gguf"
    out.parent.mkdir(exist_ok=True)
    proc = convert(src, out, *extra)
    assert proc.returncode == 1, proc.stderr
    for n in needles:
        assert n in proc.stderr, f"expected {n!r} in: {proc.stderr}"
    assert list(out.parent.iterdir()) == [], "conversion left files behind"


def test_missing_tokenizer(good_dir, tmp_path):
    (good_dir / "tokenizer.json").unlink()
    expect_failure(good_dir, tmp_path, "no tokenizer")


def test_extra_tensor(good_dir, tmp_path):
    from safetensors.numpy import load_file, save_file
    f = good_dir / "model.safetensors"
    t = load_file(f)
    t["model.layers.0.mlp.extra.weight"] = np.zeros((4, 4), np.float32)
    save_file(t, f, metadata={"format": "pt"})
    expect_failure(good_dir, tmp_path, "unexpected tensor 'model.layers.0.mlp.extra.weight'")


def test_missing_tensor(good_dir, tmp_path):
    from safetensors.numpy import load_file, save_file
    f = good_dir / "model.safetensors"
    t = load_file(f)
    del t["model.layers.1.mlp.down_proj.weight"]
    save_file(t, f, metadata={"format": "pt"})
    expect_failure(good_dir, tmp_path, "down_proj")


def test_wrong_dtype(good_dir, tmp_path):
    from safetensors.numpy import load_file, save_file
    f = good_dir / "model.safetensors"
    t = load_file(f)
    t["model.layers.0.mlp.up_proj.weight"] = t["model.layers.0.mlp.up_proj.weight"].astype(np.int32)
    save_file(t, f, metadata={"format": "pt"})
    expect_failure(good_dir, tmp_path, "up_proj")


def test_bad_config(good_dir, tmp_path):
    c = json.loads((good_dir / "config.json").read_text())
    c["num_attention_heads"] = 5
    (good_dir / "config.json").write_text(json.dumps(c))
    expect_failure(good_dir, tmp_path, "config.json")


def test_unknown_recipe(good_dir, tmp_path):
    expect_failure(good_dir, tmp_path, "unknown quantization 'w3a16'", extra=("-q", "w3a16"))


def test_write_failure_leaves_nothing(good_dir, tmp_path):
    """A file-size limit makes write() fail with EFBIG half-way (SIGXFSZ ignored, inherited by exec)."""
    import subprocess
    from conftest import edgellm_bin

    out_dir = tmp_path / "out"
    out_dir.mkdir()

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))

    proc = subprocess.run([str(edgellm_bin()), "convert", str(good_dir), "-o", str(out_dir / "m.gguf"), "-q", "f32",
                           "--quiet"], capture_output=True, text=True, preexec_fn=limit, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip(), "no error message"
    assert list(out_dir.iterdir()) == []
