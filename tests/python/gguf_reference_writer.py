"""An independent GGUF writer for the tests: Hugging Face state dict -> llama.cpp-style GGUF.

Written from the published conventions of llama.cpp's converter (not from edgellm's code), using the
`gguf` Python package's GGUFWriter and gguf.quants:
  - tensor names: token_embd, output_norm, output, rope_freqs, blk.N.{attn_norm, attn_q, attn_k,
    attn_v (+ .bias), attn_qkv (+ .bias, Qwen 1), attn_output, attn_q_norm, attn_k_norm, ffn_norm,
    ffn_gate, ffn_up, ffn_down}; Qwen 1's w1 is ffn_up, w2 is ffn_gate, c_proj is ffn_down.
  - Llama's q/k rows are permuted so that interleaved RoPE applies: within each head of D rows the
    rows are taken as (2, D/2) and transposed to (D/2, 2), i.e. new row 2i+j = old row j*D/2+i
    (q with n_head heads, k with n_head_kv heads). Qwen families keep the Hugging Face row order.
  - metadata keys {arch}.context_length, embedding_length, block_count, feed_forward_length,
    attention.head_count, attention.head_count_kv, attention.layer_norm_rms_epsilon,
    rope.freq_base, rope.dimension_count, attention.key_length/value_length (when config.json has
    head_dim), rope.scaling.type/factor (linear); Llama 3 rope scaling is stored as a rope_freqs
    tensor of per-frequency divisors. Qwen 1: feed_forward_length is config.json's
    intermediate_size (twice the size of w1/w2), no head_count_kv, rope dimension hidden/heads.
  - 1-D tensors (norms, biases, rope_freqs) stay F32; 2-D matrices take the requested type
    (F32, F16, Q8_0, Q4_0; quantized with gguf.quants.quantize).
  - no tokenizer section (edgellm's `generate --tokens` does not need one).
  - Qwen3.5 (config model_type qwen3_5_text, arch qwen35), as llama.cpp's converter (conversion/qwen.py)
    and gguf-py's qwen35 tensor list: the MLP norm is blk.N.post_attention_norm; linear-attention
    layers' in_proj_qkv/in_proj_z/in_proj_b/in_proj_a/conv1d/dt_bias/A_log/norm/out_proj become
    attn_qkv/attn_gate/ssm_beta/ssm_alpha/ssm_conv1d (squeezed to [channels, K], F32)/ssm_dt.bias/
    ssm_a (= -exp(A_log))/ssm_norm/ssm_out; every RMSNorm weight but ssm_norm gets + 1; per-value-head
    blocks go from grouped to tiled order (reshape [Hk, Hv/Hk, D] -> [Hv/Hk, Hk, D]): the value rows of
    attn_qkv and ssm_conv1d, the rows of attn_gate, ssm_beta, ssm_alpha, ssm_a, ssm_dt, and the column
    blocks of ssm_out. Keys: ssm.conv_kernel/state_size/group_count/time_step_rank/inner_size,
    attention.recurrent_layers, full_attention_interval, rope.dimension_count (head_dim *
    partial_rotary_factor), rope.dimension_sections (mrope_section padded to 4), key/value_length.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

import gguf
from gguf import GGMLQuantizationType as QT

WEIGHT_TYPES = {"f32": QT.F32, "f16": QT.F16, "q8_0": QT.Q8_0, "q4_0": QT.Q4_0}
# llama.cpp's LLAMA_FTYPE values for general.file_type
FILE_TYPES = {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 7}

_HF_LLAMA = [
    (r"model\.embed_tokens\.weight", "token_embd.weight"),
    (r"model\.norm\.weight", "output_norm.weight"),
    (r"lm_head\.weight", "output.weight"),
    (r"model\.layers\.(\d+)\.input_layernorm\.weight", "blk.{0}.attn_norm.weight"),
    (r"model\.layers\.(\d+)\.self_attn\.q_proj\.(weight|bias)", "blk.{0}.attn_q.{1}"),
    (r"model\.layers\.(\d+)\.self_attn\.k_proj\.(weight|bias)", "blk.{0}.attn_k.{1}"),
    (r"model\.layers\.(\d+)\.self_attn\.v_proj\.(weight|bias)", "blk.{0}.attn_v.{1}"),
    (r"model\.layers\.(\d+)\.self_attn\.o_proj\.weight", "blk.{0}.attn_output.weight"),
    (r"model\.layers\.(\d+)\.self_attn\.q_norm\.weight", "blk.{0}.attn_q_norm.weight"),
    (r"model\.layers\.(\d+)\.self_attn\.k_norm\.weight", "blk.{0}.attn_k_norm.weight"),
    (r"model\.layers\.(\d+)\.post_attention_layernorm\.weight", "blk.{0}.ffn_norm.weight"),
    (r"model\.layers\.(\d+)\.mlp\.gate_proj\.weight", "blk.{0}.ffn_gate.weight"),
    (r"model\.layers\.(\d+)\.mlp\.up_proj\.weight", "blk.{0}.ffn_up.weight"),
    (r"model\.layers\.(\d+)\.mlp\.down_proj\.weight", "blk.{0}.ffn_down.weight"),
]

_HF_QWEN1 = [
    (r"transformer\.wte\.weight", "token_embd.weight"),
    (r"transformer\.ln_f\.weight", "output_norm.weight"),
    (r"lm_head\.weight", "output.weight"),
    (r"transformer\.h\.(\d+)\.ln_1\.weight", "blk.{0}.attn_norm.weight"),
    (r"transformer\.h\.(\d+)\.attn\.c_attn\.(weight|bias)", "blk.{0}.attn_qkv.{1}"),
    (r"transformer\.h\.(\d+)\.attn\.c_proj\.weight", "blk.{0}.attn_output.weight"),
    (r"transformer\.h\.(\d+)\.ln_2\.weight", "blk.{0}.ffn_norm.weight"),
    (r"transformer\.h\.(\d+)\.mlp\.w1\.weight", "blk.{0}.ffn_up.weight"),
    (r"transformer\.h\.(\d+)\.mlp\.w2\.weight", "blk.{0}.ffn_gate.weight"),
    (r"transformer\.h\.(\d+)\.mlp\.c_proj\.weight", "blk.{0}.ffn_down.weight"),
]


_HF_QWEN35 = [
    (r"model\.layers\.(\d+)\.post_attention_layernorm\.weight", "blk.{0}.post_attention_norm.weight"),
    (r"model\.layers\.(\d+)\.linear_attn\.in_proj_qkv\.weight", "blk.{0}.attn_qkv.weight"),
    (r"model\.layers\.(\d+)\.linear_attn\.in_proj_z\.weight", "blk.{0}.attn_gate.weight"),
    (r"model\.layers\.(\d+)\.linear_attn\.in_proj_b\.weight", "blk.{0}.ssm_beta.weight"),
    (r"model\.layers\.(\d+)\.linear_attn\.in_proj_a\.weight", "blk.{0}.ssm_alpha.weight"),
    (r"model\.layers\.(\d+)\.linear_attn\.conv1d\.weight", "blk.{0}.ssm_conv1d.weight"),
    (r"model\.layers\.(\d+)\.linear_attn\.dt_bias", "blk.{0}.ssm_dt.bias"),
    (r"model\.layers\.(\d+)\.linear_attn\.A_log", "blk.{0}.ssm_a"),
    (r"model\.layers\.(\d+)\.linear_attn\.norm\.weight", "blk.{0}.ssm_norm.weight"),
    (r"model\.layers\.(\d+)\.linear_attn\.out_proj\.weight", "blk.{0}.ssm_out.weight"),
] + _HF_LLAMA

QWEN35_TYPES = ("qwen3_5_text", "qwen3_5")


def gguf_name(hf_name: str, model_type: str) -> str:
    table = _HF_QWEN1 if model_type == "qwen" else _HF_QWEN35 if model_type in QWEN35_TYPES else _HF_LLAMA
    for pattern, fmt in table:
        m = re.fullmatch(pattern, hf_name)
        if m:
            return fmt.format(*m.groups())
    raise KeyError(f"no GGUF name for Hugging Face tensor '{hf_name}' ({model_type})")


def llama_permute(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Hugging Face (NeoX halves) -> llama.cpp (interleaved pairs) row order, per head."""
    rows = w.shape[0]
    d = rows // n_heads
    return w.reshape(n_heads, 2, d // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama_unpermute(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Inverse of llama_permute."""
    rows = w.shape[0]
    d = rows // n_heads
    return w.reshape(n_heads, d // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _rope_params(cfg: dict) -> dict:
    rope = dict(cfg.get("rope_parameters") or {})
    if isinstance(cfg.get("rope_scaling"), dict):
        rope.update(cfg["rope_scaling"])
    if "rope_theta" not in rope and "rope_theta" in cfg:
        rope["rope_theta"] = cfg["rope_theta"]
    return rope


def llama3_rope_factors(cfg: dict, head_dim: int) -> np.ndarray:
    """Per-frequency divisors for Llama 3 rope scaling (llama.cpp's rope_freqs tensor).

    From Meta's published scaling rule: with wavelength 2*pi/f of each base frequency f,
    wavelengths shorter than old_ctx/high_freq_factor are kept, longer than old_ctx/low_freq_factor
    are divided by `factor`, and in between f is blended: (1-s) f/factor + s f with
    s = (old_ctx/wavelength - low)/(high - low). The divisor stored is f_base / f_scaled.
    """
    rope = _rope_params(cfg)
    base = float(rope["rope_theta"])
    factor = float(rope["factor"])
    low = float(rope.get("low_freq_factor", 1.0))
    high = float(rope.get("high_freq_factor", 4.0))
    old_ctx = float(rope.get("original_max_position_embeddings", 8192))
    freqs = 1.0 / base ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    out = []
    for f in freqs:
        wavelen = 2 * math.pi / f
        if wavelen < old_ctx / high:
            out.append(1.0)
        elif wavelen > old_ctx / low:
            out.append(factor)
        else:
            s = (old_ctx / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - s) / factor + s))
    return np.array(out, dtype=np.float32)


def _qwen35_dims(config: dict) -> dict:
    hk, hv = int(config["linear_num_key_heads"]), int(config["linear_num_value_heads"])
    dk, dv = int(config["linear_key_head_dim"]), int(config["linear_value_head_dim"])
    return dict(hk=hk, hv=hv, dk=dk, dv=dv, key_dim=hk * dk)


def _tile_rows(a: np.ndarray, first: int, hk: int, hv: int, per_head: int, inverse: bool = False) -> np.ndarray:
    """Rows [first, first + hv*per_head) from grouped [hk, r, per_head] to tiled [r, hk, per_head] (or back)."""
    a = np.array(a, copy=True)
    r = hv // hk
    block = a[first:first + hv * per_head]
    rest = block.shape[1:]
    if inverse:
        block = block.reshape(r, hk, per_head, *rest).swapaxes(0, 1)
    else:
        block = block.reshape(hk, r, per_head, *rest).swapaxes(0, 1)
    a[first:first + hv * per_head] = block.reshape(hv * per_head, *rest)
    return a


def qwen35_to_gguf(gname: str, arr: np.ndarray, config: dict) -> np.ndarray:
    """A Qwen3.5 tensor as llama.cpp's converter stores it (see the module docstring)."""
    d = _qwen35_dims(config)
    hk, hv, dv = d["hk"], d["hv"], d["dv"]
    arr = np.asarray(arr, dtype=np.float32)
    if re.search(r"(attn_norm|post_attention_norm|attn_q_norm|attn_k_norm)\.weight$", gname) or gname == "output_norm.weight":
        return arr + np.float32(1.0)
    if gname.endswith(".ssm_a"):
        # exp in float64, rounded once (numpy's float32 exp is off by one ulp for ~40% of inputs)
        return _tile_rows((-np.exp(arr.astype(np.float64))).astype(np.float32), 0, hk, hv, 1)
    if gname.endswith(".ssm_dt.bias"):
        return _tile_rows(arr, 0, hk, hv, 1)
    if gname.endswith(".ssm_conv1d.weight"):
        return _tile_rows(arr.reshape(arr.shape[0], arr.shape[-1]), 2 * d["key_dim"], hk, hv, dv)
    if gname.endswith(".attn_qkv.weight"):
        return _tile_rows(arr, 2 * d["key_dim"], hk, hv, dv)
    if gname.endswith(".attn_gate.weight"):
        return _tile_rows(arr, 0, hk, hv, dv)
    if gname.endswith((".ssm_beta.weight", ".ssm_alpha.weight")):
        return _tile_rows(arr, 0, hk, hv, 1)
    if gname.endswith(".ssm_out.weight"):
        return _tile_rows(arr.T, 0, hk, hv, dv).T.copy()
    return arr


def qwen35_from_gguf(gname: str, arr: np.ndarray, config: dict, shape) -> np.ndarray:
    """Inverse of qwen35_to_gguf, into the Hugging Face tensor's shape."""
    d = _qwen35_dims(config)
    hk, hv, dv = d["hk"], d["hv"], d["dv"]
    if re.search(r"(attn_norm|post_attention_norm|attn_q_norm|attn_k_norm)\.weight$", gname) or gname == "output_norm.weight":
        return arr - np.float32(1.0)
    if gname.endswith(".ssm_a"):
        return np.log(-_tile_rows(arr, 0, hk, hv, 1, inverse=True).astype(np.float64)).astype(np.float32)
    if gname.endswith(".ssm_dt.bias") or gname.endswith((".ssm_beta.weight", ".ssm_alpha.weight")):
        return _tile_rows(arr, 0, hk, hv, 1, inverse=True)
    if gname.endswith(".ssm_conv1d.weight"):
        return _tile_rows(arr, 2 * d["key_dim"], hk, hv, dv, inverse=True).reshape(shape)
    if gname.endswith(".attn_qkv.weight"):
        return _tile_rows(arr, 2 * d["key_dim"], hk, hv, dv, inverse=True)
    if gname.endswith(".attn_gate.weight"):
        return _tile_rows(arr, 0, hk, hv, dv, inverse=True)
    if gname.endswith(".ssm_out.weight"):
        return _tile_rows(arr.T, 0, hk, hv, dv, inverse=True).T.copy()
    return arr


def _encode(arr: np.ndarray, weight_type: str):
    """(data, raw_dtype) for GGUFWriter.add_tensor."""
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if weight_type == "f32":
        return arr, None
    if weight_type == "f16":
        return arr.astype(np.float16), None
    qtype = WEIGHT_TYPES[weight_type]
    return gguf.quants.quantize(arr, qtype), qtype


def write_gguf(path, config: dict, state_dict: dict[str, np.ndarray], weight_type: str = "f32",
               tensor_types: dict[str, str] | None = None, arch_override: str | None = None,
               name: str = "edgellm test model") -> Path:
    """Writes a llama.cpp-style GGUF of a Hugging Face model.

    config: config.json contents (model_type llama, qwen2, qwen3 or qwen).
    state_dict: Hugging Face tensor names -> float32 numpy arrays ([out, in] for matrices).
    weight_type: f32, f16, q8_0 or q4_0 for the 2-D matrices.
    tensor_types: optional per-GGUF-tensor override of the weight type (e.g. for corrupt files).
    """
    model_type = config["model_type"]
    qwen35 = model_type in QWEN35_TYPES
    arch = arch_override or ("qwen35" if qwen35 else model_type)
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(name)
    w.add_file_type(FILE_TYPES[weight_type])
    if weight_type in ("q8_0", "q4_0"):
        w.add_quantization_version(gguf.GGML_QUANT_VERSION)

    n_embd = int(config["hidden_size"])
    n_head = int(config["num_attention_heads"])
    n_layer = int(config["num_hidden_layers"])
    tied = bool(config.get("tie_word_embeddings", False))
    if model_type == "qwen":
        w.add_context_length(int(config.get("max_position_embeddings", config["seq_length"])))
        w.add_block_count(n_layer)
        w.add_embedding_length(n_embd)
        w.add_feed_forward_length(int(config["intermediate_size"]))  # w1 + w2 together, as config.json
        w.add_rope_freq_base(float(config["rotary_emb_base"]))
        w.add_rope_dimension_count(n_embd // n_head)
        w.add_head_count(n_head)
        w.add_layer_norm_rms_eps(float(config["layer_norm_epsilon"]))
        n_head_kv = n_head
        head_dim = n_embd // n_head
    else:
        n_head_kv = int(config.get("num_key_value_heads") or n_head)
        head_dim = int(config.get("head_dim") or n_embd // n_head)
        rope = _rope_params(config)
        w.add_context_length(int(config["max_position_embeddings"]))
        w.add_embedding_length(n_embd)
        w.add_block_count(n_layer)
        w.add_feed_forward_length(int(config["intermediate_size"]))
        w.add_head_count(n_head)
        w.add_head_count_kv(n_head_kv)
        w.add_layer_norm_rms_eps(float(config["rms_norm_eps"]))
        w.add_rope_freq_base(float(rope.get("rope_theta", 10000.0)))
        if config.get("head_dim"):
            w.add_key_length(head_dim)
            w.add_value_length(head_dim)
        if model_type == "llama":
            w.add_rope_dimension_count(head_dim)
            w.add_vocab_size(int(config["vocab_size"]))
        if qwen35:
            prf = float(rope.get("partial_rotary_factor", config.get("partial_rotary_factor", 0.25)))
            w.add_rope_dimension_count(int(head_dim * prf))
            sections = list(rope.get("mrope_section", [11, 11, 10]))
            w.add_rope_dimension_sections((sections + [0, 0, 0, 0])[:4])
            w.add_ssm_conv_kernel(int(config["linear_conv_kernel_dim"]))
            w.add_ssm_state_size(int(config["linear_key_head_dim"]))
            w.add_ssm_group_count(int(config["linear_num_key_heads"]))
            w.add_ssm_time_step_rank(int(config["linear_num_value_heads"]))
            w.add_ssm_inner_size(int(config["linear_value_head_dim"]) * int(config["linear_num_value_heads"]))
            types = config["layer_types"]
            w.add_array(f"{arch}.attention.recurrent_layers", [t == "linear_attention" for t in types])
            w.add_full_attention_interval(int(config.get("full_attention_interval", 4)))
        rtype = rope.get("rope_type", rope.get("type", "default"))
        if rtype == "linear":
            w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
            w.add_rope_scaling_factor(float(rope["factor"]))

    tensor_types = tensor_types or {}
    items = []
    for hf_name, arr in state_dict.items():
        if hf_name == "lm_head.weight" and tied:
            continue
        gname = gguf_name(hf_name, model_type)
        arr = np.asarray(arr, dtype=np.float32)
        if model_type == "llama" and re.search(r"attn_[qk]\.(weight|bias)$", gname):
            heads = n_head if ".attn_q." in gname else n_head_kv
            arr = llama_permute(arr, heads)
        if qwen35:
            arr = qwen35_to_gguf(gname, arr, config)
        items.append((gname, arr))
    if model_type == "llama" and _rope_params(config).get("rope_type") == "llama3":
        items.append(("rope_freqs.weight", llama3_rope_factors(config, head_dim)))

    for gname, arr in items:
        default = weight_type if arr.ndim == 2 and not gname.endswith(".ssm_conv1d.weight") else "f32"
        data, raw = _encode(arr, tensor_types.get(gname, default))
        w.add_tensor(gname, data, raw_dtype=raw)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return Path(path)


def read_dequantized(path) -> dict[str, np.ndarray]:
    """Every tensor of a GGUF file, dequantized to float32 with numpy shape [ne1, ne0] (rows, cols)."""
    reader = gguf.GGUFReader(str(path))
    out = {}
    for t in reader.tensors:
        arr = gguf.quants.dequantize(t.data, t.tensor_type)
        shape = [int(x) for x in reversed(t.shape.tolist())]
        out[t.name] = np.asarray(arr, dtype=np.float32).reshape(shape)
    return out


def hf_state_dict_from_gguf(path, config: dict, template: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Dequantized GGUF tensors back under Hugging Face names (llama q/k un-permuted).

    template: the Hugging Face state dict the file was written from (gives the names to fill).
    """
    model_type = config["model_type"]
    tensors = read_dequantized(path)
    n_head = int(config["num_attention_heads"])
    n_head_kv = int(config.get("num_key_value_heads") or n_head)
    out = {}
    for hf_name, ref in template.items():
        gname = gguf_name(hf_name, model_type)
        if gname == "output.weight" and gname not in tensors:
            gname = "token_embd.weight"  # tied
        if model_type in QWEN35_TYPES:
            out[hf_name] = qwen35_from_gguf(gname, tensors[gname], config, ref.shape).reshape(ref.shape)
            continue
        arr = tensors[gname].reshape(ref.shape)
        if model_type == "llama" and re.search(r"attn_[qk]\.(weight|bias)$", gname):
            arr = llama_unpermute(arr, n_head if ".attn_q." in gname else n_head_kv)
        out[hf_name] = arr
    return out
