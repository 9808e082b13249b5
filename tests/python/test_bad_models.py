"""Bad model files through the CLI (issue 3: "Bad input").

Every corrupt GGUF file or Hugging Face directory below must make `edgellm generate` (and
`edgellm inspect`) exit with status 1 - not crash, not die from a signal, not succeed - and print a
message that names the file and the offending tensor or key. The files are made from a valid tiny
model with the `gguf` package (gguf_reference_writer.py) or by byte surgery on a valid file, whose
layout is located by the small GGUF header parser below (written from the GGUF v3 specification:
magic, u32 version, u64 tensor count, u64 metadata count, key/value pairs, tensor infos
(name, u32 n_dims, u64 dims, u32 ggml type, u64 offset), padding to general.alignment, data).
"""

from __future__ import annotations

import json
import math
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

import gguf_reference_writer as gw
import tiny_models as tm
from conftest import run_cli

SPEC = tm.SPECS["qwen2"]
PROMPT = "1,2,3"


# ---------------------------------------------------------------------------------------------
# GGUF layout (positions of the fields byte surgery edits)
# ---------------------------------------------------------------------------------------------

_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


@dataclass
class TensorInfo:
    name: str
    dims: list
    dims_pos: int
    type_pos: int
    ggml_type: int
    offset_pos: int
    offset: int


@dataclass
class GgufLayout:
    version_pos: int = 4
    kv: dict = field(default_factory=dict)        # key -> (value position, value type)
    tensors: dict = field(default_factory=dict)   # name -> TensorInfo
    infos_start: int = 0
    data_start: int = 0
    alignment: int = 32


def parse_layout(path) -> GgufLayout:
    b = Path(path).read_bytes()
    assert b[:4] == b"GGUF"
    pos = 4
    lay = GgufLayout()

    def rd(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, b, pos)[0]
        pos += struct.calcsize(fmt)
        return v

    def rd_str():
        nonlocal pos
        n = rd("<Q")
        s = b[pos:pos + n].decode("utf-8")
        pos += n
        return s

    def skip(t):
        nonlocal pos
        if t == 8:
            rd_str()
        elif t == 9:
            et, n = rd("<I"), rd("<Q")
            for _ in range(n):
                skip(et)
        else:
            pos += _SCALAR_SIZES[t]

    rd("<I")  # version
    n_tensors, n_kv = rd("<Q"), rd("<Q")
    for _ in range(n_kv):
        key = rd_str()
        t = rd("<I")
        lay.kv[key] = (pos, t)
        if key == "general.alignment":
            lay.alignment = struct.unpack_from("<I", b, pos)[0]
        skip(t)
    lay.infos_start = pos
    for _ in range(n_tensors):
        name = rd_str()
        nd = rd("<I")
        dims_pos = pos
        dims = [rd("<Q") for _ in range(nd)]
        type_pos = pos
        ttype = rd("<I")
        off_pos = pos
        off = rd("<Q")
        lay.tensors[name] = TensorInfo(name, dims, dims_pos, type_pos, ttype, off_pos, off)
    lay.data_start = (pos + lay.alignment - 1) // lay.alignment * lay.alignment
    return lay


def patch(src: Path, dst: Path, pos: int, fmt: str, value) -> Path:
    b = bytearray(src.read_bytes())
    struct.pack_into(fmt, b, pos, value)
    dst.write_bytes(bytes(b))
    return dst


def truncate(src: Path, dst: Path, size: int) -> Path:
    dst.write_bytes(src.read_bytes()[:size])
    return dst


# ---------------------------------------------------------------------------------------------
# Fixtures: one valid model in both formats
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model():
    return tm.make_model(SPEC)


@pytest.fixture(scope="module")
def good(model, module_tmp):
    cfg = tm.hf_config_dict(SPEC, model)
    sd = tm.hf_state_dict_for_writer(SPEC, model)
    path = gw.write_gguf(module_tmp / "good.gguf", cfg, sd, "f32")
    hf = tm.save_hf_dir(model, module_tmp / "good-hf")
    # Both must run before any corruption is meaningful.
    for m in (path, hf):
        proc = run_cli(["generate", "-m", m, "--tokens", PROMPT, "-n", 2])
        assert proc.returncode == 0, proc.stderr
    return dict(gguf=path, hf=hf, cfg=cfg, sd=sd, layout=parse_layout(path))


def expect_error(path, *needles, any_of=()):
    """generate and inspect both exit with 1 and name the file and every needle (and one of any_of)."""
    path = Path(path)
    for cmd in (["generate", "-m", path, "--tokens", PROMPT, "-n", 2], ["inspect", path]):
        proc = run_cli(cmd, timeout=60)
        msg = proc.stderr
        assert proc.returncode == 1, (f"{cmd[0]}: exit status {proc.returncode} (negative = killed by a signal), "
                                      f"expected 1\nstderr: {msg}\nstdout: {proc.stdout[:500]}")
        assert str(path) in msg, f"{cmd[0]}: message does not name the file {path}: {msg!r}"
        rest = msg.replace(str(path), "<path>")  # the needles must not match just the file's own name
        for n in needles:
            assert n in rest, f"{cmd[0]}: message does not name {n!r}: {msg!r}"
        if any_of:
            assert any(n in rest for n in any_of), f"{cmd[0]}: message names none of {any_of}: {msg!r}"
    print(f"[bad-model] {path.name}: {msg.strip()}")
    return msg


def gguf_variant(good, tmp: Path, name: str, sd=None, **kw) -> Path:
    return gw.write_gguf(tmp / name, good["cfg"], sd if sd is not None else good["sd"], kw.pop("weight_type", "f32"), **kw)


# ---------------------------------------------------------------------------------------------
# GGUF
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["header", "metadata", "tensor_infos", "data"])
def test_gguf_truncated(where, good, module_tmp):
    src, lay = good["gguf"], good["layout"]
    size = {"header": 13, "metadata": lay.infos_start - 40, "tensor_infos": lay.data_start - 20,
            "data": src.stat().st_size - 1000}[where]
    dst = truncate(src, module_tmp / f"truncated-{where}.gguf", size)
    if where == "data":
        # Some tensors' data no longer fit: the error must name one of them.
        import gguf
        sizes = {t.name: int(t.n_bytes) for t in gguf.GGUFReader(str(src)).tensors}
        cut = [n for n, t in lay.tensors.items() if lay.data_start + t.offset + sizes[n] > size]
        assert cut
        expect_error(dst, any_of=tuple(f"'{n}'" for n in cut))
    else:
        expect_error(dst)


def test_gguf_wrong_magic(good, module_tmp):
    b = bytearray(good["gguf"].read_bytes())
    b[:4] = b"GGUX"
    dst = module_tmp / "magic.gguf"
    dst.write_bytes(bytes(b))
    expect_error(dst, any_of=("magic", "not a GGUF"))


def test_gguf_version_99(good, module_tmp):
    dst = patch(good["gguf"], module_tmp / "version99.gguf", good["layout"].version_pos, "<I", 99)
    expect_error(dst, "99", any_of=("version",))


def test_gguf_tensor_offset_past_end(good, module_tmp):
    t = good["layout"].tensors["blk.1.ffn_down.weight"]
    size = good["gguf"].stat().st_size
    dst = patch(good["gguf"], module_tmp / "offset.gguf", t.offset_pos, "<Q", (size // 32 + 64) * 32)
    expect_error(dst, t.name)


def test_gguf_tensor_offset_overflow(good, module_tmp):
    t = good["layout"].tensors["blk.0.attn_q.weight"]
    dst = patch(good["gguf"], module_tmp / "offset-overflow.gguf", t.offset_pos, "<Q", 2**64 - 32)
    expect_error(dst, t.name)


def test_gguf_tensor_dimension_huge(good, module_tmp):
    t = good["layout"].tensors["blk.0.attn_k.weight"]
    dst = patch(good["gguf"], module_tmp / "dim-huge.gguf", t.dims_pos + 8, "<Q", 2**62)
    expect_error(dst, t.name)


def test_gguf_shape_mismatch_attn_q(good, model, module_tmp):
    sd = dict(good["sd"])
    sd["model.layers.0.self_attn.q_proj.weight"] = sd["model.layers.0.self_attn.q_proj.weight"][:-16]
    expect_error(gguf_variant(good, module_tmp, "shape-q.gguf", sd), "blk.0.attn_q.weight")


def test_gguf_shape_mismatch_embedding_vs_output(good, module_tmp):
    sd = dict(good["sd"])
    sd["lm_head.weight"] = sd["lm_head.weight"][:-32]
    expect_error(gguf_variant(good, module_tmp, "shape-out.gguf", sd), "output.weight")


def test_gguf_dtype_quantized_norm(good, module_tmp):
    p = gguf_variant(good, module_tmp, "dtype-norm.gguf", tensor_types={"blk.0.attn_norm.weight": "q8_0"})
    expect_error(p, "blk.0.attn_norm.weight")


def test_gguf_dtype_unknown_type_id(good, module_tmp):
    t = good["layout"].tensors["blk.1.attn_v.weight"]
    dst = patch(good["gguf"], module_tmp / "dtype-unknown.gguf", t.type_pos, "<I", 99)
    expect_error(dst, t.name)


def test_gguf_dtype_f64_matrix(good, module_tmp):
    import gguf
    path = module_tmp / "dtype-f64.gguf"
    src = gguf.GGUFReader(str(good["gguf"]))
    w = gguf.GGUFWriter(str(path), "qwen2")
    for key, f in src.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        vt = f.types[0]
        if vt == gguf.GGUFValueType.STRING:
            w.add_string(key, f.contents())
        elif vt == gguf.GGUFValueType.UINT32:
            w.add_uint32(key, f.contents())
        elif vt == gguf.GGUFValueType.FLOAT32:
            w.add_float32(key, f.contents())
    for t in src.tensors:
        data = np.array(t.data).reshape([int(x) for x in reversed(t.shape.tolist())])
        if t.name == "blk.0.ffn_up.weight":
            data = data.astype(np.float64)
        w.add_tensor(t.name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    expect_error(path, "blk.0.ffn_up.weight")


def test_gguf_missing_tensor(good, module_tmp):
    sd = {k: v for k, v in good["sd"].items() if k != "model.layers.1.mlp.down_proj.weight"}
    expect_error(gguf_variant(good, module_tmp, "missing.gguf", sd), "blk.1.ffn_down.weight")


def test_gguf_unsupported_architecture(good, module_tmp):
    expect_error(gguf_variant(good, module_tmp, "gpt2.gguf", arch_override="gpt2"), "gpt2")


def test_gguf_missing_key(good, module_tmp):
    pos, _ = good["layout"].kv["qwen2.embedding_length"]
    # Rename the key in place (same length) so that it is absent under its real name.
    b = bytearray(good["gguf"].read_bytes())
    key = b"qwen2.embedding_length"
    at = b.index(key)
    b[at:at + len(key)] = b"qwen2.embedding_lengtX"
    dst = module_tmp / "missing-key.gguf"
    dst.write_bytes(bytes(b))
    expect_error(dst, "embedding_length")



@pytest.mark.parametrize("key", ["qwen2.rope.freq_base",
                                 "qwen2.attention.layer_norm_rms_epsilon"])
def test_gguf_nan_metadata(key, good, module_tmp):
    pos, t = good["layout"].kv[key]
    assert t == 6  # f32
    dst = patch(good["gguf"], module_tmp / f"nan-{key.split('.')[-1]}.gguf", pos, "<f", float("nan"))
    expect_error(dst, key)


def test_gguf_wrong_key_type(good, module_tmp):
    pos, t = good["layout"].kv["qwen2.block_count"]
    assert t == 4  # u32
    b = bytearray(good["gguf"].read_bytes())
    struct.pack_into("<I", b, pos - 4, 6)  # declare it f32 (same size)
    dst = module_tmp / "key-type.gguf"
    dst.write_bytes(bytes(b))
    expect_error(dst, "block_count")


# ---------------------------------------------------------------------------------------------
# Hugging Face directories
# ---------------------------------------------------------------------------------------------

def hf_variant(good, tmp: Path, name: str, config_edit=None, tensors_edit=None, raw_config: str | None = None) -> Path:
    d = tmp / name
    if d.exists():
        shutil.rmtree(d)
    shutil.copytree(good["hf"], d)
    if config_edit or raw_config is not None:
        cfg = json.loads((d / "config.json").read_text())
        if config_edit:
            config_edit(cfg)
        (d / "config.json").write_text(raw_config if raw_config is not None else json.dumps(cfg, indent=2))
    if tensors_edit:
        from safetensors.numpy import load_file, save_file
        st = load_file(str(d / "model.safetensors"))
        tensors_edit(st)
        save_file(st, str(d / "model.safetensors"), metadata={"format": "pt"})
    return d


@pytest.mark.parametrize("key", ["rms_norm_eps", "hidden_size"])
def test_hf_nan_in_config(key, good, module_tmp):
    def edit(c):
        c[key] = float("nan")
    d = hf_variant(good, module_tmp, f"nan-{key}", edit)
    assert "NaN" in (d / "config.json").read_text()
    expect_error(d, "config.json", key)


@pytest.mark.parametrize("key,value", [
    ("num_hidden_layers", "two"),
    ("hidden_size", 64.5),
    ("vocab_size", -5),
    ("num_attention_heads", 0),
    ("tie_word_embeddings", "yes"),
    ("rms_norm_eps", "small"),
    ("intermediate_size", [160]),
    ("rope_parameters.rope_theta", "big"),
    ("model_type", 7),
])
def test_hf_invalid_config_value(key, value, good, module_tmp):
    def edit(c):
        if "." in key:
            a, b = key.split(".")
            c[a][b] = value
        else:
            c[key] = value
    d = hf_variant(good, module_tmp, f"bad-{key}", edit)
    expect_error(d, "config.json", key.split(".")[-1])


def test_hf_missing_config_key(good, module_tmp):
    d = hf_variant(good, module_tmp, "missing-key", lambda c: c.pop("hidden_size"))
    expect_error(d, "config.json", "hidden_size")


def test_hf_unsupported_architecture(good, module_tmp):
    def edit(c):
        c["model_type"] = "gpt2"
        c["architectures"] = ["GPT2LMHeadModel"]
    expect_error(hf_variant(good, module_tmp, "gpt2", edit), "config.json", "gpt2")


def test_hf_malformed_json(good, module_tmp):
    expect_error(hf_variant(good, module_tmp, "malformed", raw_config='{"model_type": "qwen2", '), "config.json")


@pytest.mark.parametrize("where", ["header_length", "header", "data"])
def test_hf_truncated_safetensors(where, good, module_tmp):
    d = hf_variant(good, module_tmp, f"trunc-st-{where}")
    st = d / "model.safetensors"
    b = st.read_bytes()
    (hlen,) = struct.unpack_from("<Q", b, 0)
    size = {"header_length": 5, "header": 8 + hlen // 2, "data": len(b) - 300}[where]
    st.write_bytes(b[:size])
    if where == "data":
        header = json.loads(b[8:8 + hlen])
        cut = [k for k in header if k != "__metadata__" and 8 + hlen + header[k]["data_offsets"][1] > size]
        assert cut
        expect_error(d, "model.safetensors", any_of=tuple(f"'{k}'" for k in cut))
    else:
        expect_error(d, "model.safetensors")


def test_hf_safetensors_offsets_past_end(good, module_tmp):
    d = hf_variant(good, module_tmp, "st-offsets")
    st = d / "model.safetensors"
    b = st.read_bytes()
    (hlen,) = struct.unpack_from("<Q", b, 0)
    header = json.loads(b[8:8 + hlen])
    name = "model.layers.0.mlp.up_proj.weight"
    lo, hi = header[name]["data_offsets"]
    header[name]["data_offsets"] = [lo + 10**9, hi + 10**9]
    hb = json.dumps(header).encode()
    hb += b" " * (-len(hb) % 8)
    st.write_bytes(struct.pack("<Q", len(hb)) + hb + b[8 + hlen:])
    expect_error(d, "model.safetensors", name)


def test_hf_shape_mismatch(good, module_tmp):
    def edit(st):
        st["model.layers.0.self_attn.q_proj.weight"] = st["model.layers.0.self_attn.q_proj.weight"][:-16].copy()
    expect_error(hf_variant(good, module_tmp, "shape", tensors_edit=edit), "model.layers.0.self_attn.q_proj.weight")


@pytest.mark.parametrize("dtype", [np.int32, np.float64])
def test_hf_dtype_mismatch(dtype, good, module_tmp):
    name = "model.layers.1.mlp.gate_proj.weight"

    def edit(st):
        st[name] = st[name].astype(dtype)
    expect_error(hf_variant(good, module_tmp, f"dtype-{np.dtype(dtype).name}", tensors_edit=edit), name)


def test_hf_missing_tensor(good, module_tmp):
    name = "model.layers.1.self_attn.k_proj.bias"
    expect_error(hf_variant(good, module_tmp, "missing-tensor", tensors_edit=lambda st: st.pop(name)), name)


def test_hf_no_weights(good, module_tmp):
    d = hf_variant(good, module_tmp, "no-weights")
    (d / "model.safetensors").unlink()
    expect_error(d)
