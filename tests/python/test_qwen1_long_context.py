"""Qwen 1 beyond its training length: dynamic NTK RoPE and log-n attention scaling (issue 3).

transformers has no Qwen 1 modeling code, so the reference here is a small float64 torch
re-implementation of the attention math of Qwen's published modeling_qwen.py, written from its
description:
  - dynamic NTK: for a prompt of L tokens (the whole prefill), with training length seq_length,
      context_value = log2(L / seq_length) + 1
      ntk_alpha     = max(2 ** ceil(context_value) - 1, 1)
      base'         = rotary_emb_base * ntk_alpha ** (dim / (dim - 2)),  dim = kv_channels * rotary_pct
    and inv_freq = 1 / base' ** (arange(0, dim, 2) / dim), NeoX (rotate_half) pairs on the first dim
    dimensions of each head. The alpha chosen at the prefill is kept for the decode steps of the
    same generation (the remote code caches it while the KV cache is in use).
  - log-n: after RoPE, the query at 0-based position p is multiplied by log(p + 1) / log(seq_length)
    when p + 1 > seq_length (1 otherwise).
  - otherwise a Qwen2-style block: RMSNorm, fused c_attn (q, k, v rows, with bias), softmax(q k^T /
    sqrt(head_dim)) causal, c_proj (no bias), MLP c_proj(w1(x) * silu(w2(x))), final RMSNorm, lm_head.
The re-implementation is itself checked against transformers' Qwen2ForCausalLM on the same weights
where neither feature triggers.

A tiny Qwen 1 directory with seq_length = 8 runs prompts of 6..20 tokens plus a few greedy decode
steps in edgellm (--kv-type f32); logits must agree within 1e-4 (max|a-b|/max|b| per row) and the
greedy ids exactly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import tiny_models as tm
from conftest import assert_within, measure, rel_err_rows, report, run_generate

SEQ_LENGTH = 8
BOUND = 1e-4


def get_ntk_alpha(length: int, seq_length: int) -> float:
    context_value = math.log2(length / seq_length) + 1
    return float(max(2 ** math.ceil(context_value) - 1, 1))


def logn_scale(p: int, seq_length: int) -> float:
    return math.log(p + 1) / math.log(seq_length) if p + 1 > seq_length else 1.0


def _rms(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def _rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


@torch.no_grad()
def qwen1_forward(W: dict, cfg: dict, tokens: list[int], ntk_alpha: float, use_logn: bool) -> np.ndarray:
    """Logits at every position (float64) of Qwen 1 for `tokens`, with a fixed NTK alpha."""
    W = {k: v.to(torch.float64) for k, v in W.items()}
    E, H, D = cfg["hidden_size"], cfg["num_attention_heads"], cfg["kv_channels"]
    rot = int(D * cfg["rotary_pct"])
    eps, seq_len = cfg["layer_norm_epsilon"], cfg["seq_length"]
    T = len(tokens)
    base = cfg["rotary_emb_base"] * ntk_alpha ** (rot / (rot - 2))
    inv_freq = 1.0 / base ** (torch.arange(0, rot, 2, dtype=torch.float64) / rot)
    freqs = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1)
    cos, sin = emb.cos()[:, None, :], emb.sin()[:, None, :]          # [T, 1, rot]
    logn = torch.tensor([logn_scale(p, seq_len) if use_logn else 1.0 for p in range(T)],
                        dtype=torch.float64)[:, None, None]
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)

    def rope(t):  # t: [T, H, D]
        r, rest = t[..., :rot], t[..., rot:]
        return torch.cat([r * cos + _rotate_half(r) * sin, rest], dim=-1)

    x = W["transformer.wte.weight"][tokens]
    for i in range(cfg["num_hidden_layers"]):
        p = f"transformer.h.{i}."
        h = _rms(x, W[p + "ln_1.weight"], eps)
        qkv = h @ W[p + "attn.c_attn.weight"].T + W[p + "attn.c_attn.bias"]
        q, k, v = (t.reshape(T, H, D) for t in qkv.split(E, dim=-1))
        q, k = rope(q), rope(k)
        q = q * logn
        scores = torch.einsum("thd,shd->hts", q, k) / math.sqrt(D) + mask
        att = torch.einsum("hts,shd->thd", torch.softmax(scores, dim=-1), v).reshape(T, E)
        x = x + att @ W[p + "attn.c_proj.weight"].T
        h = _rms(x, W[p + "ln_2.weight"], eps)
        a1 = h @ W[p + "mlp.w1.weight"].T
        a2 = h @ W[p + "mlp.w2.weight"].T
        x = x + (a1 * torch.nn.functional.silu(a2)) @ W[p + "mlp.c_proj.weight"].T
    x = _rms(x, W["transformer.ln_f.weight"], eps)
    return (x @ W["lm_head.weight"].T).numpy()


def qwen1_greedy(W, cfg, prompt, n):
    """Greedy generation as one modeling_qwen generate call: alpha fixed by the prompt length."""
    alpha = get_ntk_alpha(len(prompt), cfg["seq_length"]) if cfg["use_dynamic_ntk"] else 1.0
    seq = list(prompt)
    for _ in range(n):
        seq.append(int(qwen1_forward(W, cfg, seq, alpha, cfg["use_logn_attn"])[-1].argmax()))
    gen = seq[len(prompt):]
    logits = qwen1_forward(W, cfg, prompt + gen[:-1], alpha, cfg["use_logn_attn"])
    return gen, logits, alpha


@pytest.fixture(scope="module")
def weights():
    model = tm.make_model(tm.SPECS["qwen1"])
    return model, tm.qwen1_tensors_from_qwen2(model)


def _config(model, use_dynamic_ntk=True, use_logn_attn=True, rotary_pct=1.0, seq_length=SEQ_LENGTH):
    c = model.config
    return tm.qwen1_config(vocab_size=c.vocab_size, hidden_size=c.hidden_size, num_hidden_layers=c.num_hidden_layers,
                           num_attention_heads=c.num_attention_heads, ffn=c.intermediate_size,
                           kv_channels=c.hidden_size // c.num_attention_heads, seq_length=seq_length,
                           layer_norm_epsilon=c.rms_norm_eps, rotary_emb_base=c.rope_parameters["rope_theta"],
                           rotary_pct=rotary_pct, use_dynamic_ntk=use_dynamic_ntk, use_logn_attn=use_logn_attn)


def test_ntk_alpha_values():
    """Hand-computed: L/seq_length in (1, 2] -> alpha 3, (2, 4] -> 7, (4, 8] -> 15; <= 1 -> 1."""
    assert [get_ntk_alpha(L, 8) for L in (1, 4, 8, 9, 16, 17, 20, 32, 33)] == [1, 1, 1, 3, 3, 7, 7, 7, 15]
    assert logn_scale(7, 8) == 1.0 and logn_scale(8, 8) == pytest.approx(math.log(9) / math.log(8))


def test_reimplementation_matches_transformers_within_training_length(weights):
    """Within the training length both features are off: the re-implementation equals Qwen2."""
    model, W = weights
    cfg = _config(model, seq_length=8192)
    prompt = tm.prompt_ids(tm.SPECS["qwen1"], 20, seed=5)
    ref = tm.hf_logits(tm.reference_copy(model), prompt)
    mine = qwen1_forward(W, cfg, prompt, 1.0, True)
    assert rel_err_rows(mine, ref).max() < 1e-6


CASES = [
    # name, prompt length, tokens generated, dynamic NTK, log-n, rotary_pct, --batch
    ("ntk+logn, prompt 20 (alpha 7)", 20, 6, True, True, 1.0, None),
    ("ntk only, prompt 20", 20, 6, True, False, 1.0, None),
    ("logn only, prompt 20", 20, 6, False, True, 1.0, None),
    ("prompt 6 < 8, decode crosses 8 (alpha 1)", 6, 9, True, True, 1.0, None),
    ("prompt 9 (alpha 3)", 9, 4, True, True, 1.0, None),
    ("prompt 16 (alpha 3)", 16, 4, True, True, 1.0, None),
    ("prompt 17 (alpha 7)", 17, 4, True, True, 1.0, None),
    ("ntk+logn, rotary_pct 0.5", 20, 6, True, True, 0.5, None),
    ("ntk+logn, prefill in chunks of 6", 20, 6, True, True, 1.0, 6),
]


@pytest.mark.parametrize("label,n_prompt,n_gen,ntk,logn,pct,batch", CASES, ids=[c[0] for c in CASES])
def test_long_context(label, n_prompt, n_gen, ntk, logn, pct, batch, weights, module_tmp):
    model, W = weights
    cfg = _config(model, use_dynamic_ntk=ntk, use_logn_attn=logn, rotary_pct=pct)
    d = tm.write_qwen1_dir(module_tmp / f"qwen1-{abs(hash(label))}", W, cfg)
    prompt = tm.prompt_ids(tm.SPECS["qwen1"], n_prompt, seed=11)
    gen, ref, alpha = qwen1_greedy(W, cfg, prompt, n_gen)
    r = run_generate(d, prompt, n_gen, module_tmp, kv_type="f32", batch=batch)
    m = measure(r, ref)
    assert_within(f"qwen1 seq_length 8: {label}", m, BOUND, f"  alpha {alpha:g}")
    assert r.ids == gen, f"greedy ids differ:\n edgellm {r.ids}\n ref     {gen}"


def test_features_are_active(weights, module_tmp):
    """Negative control: without NTK and log-n the reference is far from edgellm's output, so the
    agreement above really tests the two features."""
    model, W = weights
    cfg = _config(model)
    d = tm.write_qwen1_dir(module_tmp / "qwen1-active", W, cfg)
    prompt = tm.prompt_ids(tm.SPECS["qwen1"], 20, seed=11)
    r = run_generate(d, prompt, 6, module_tmp, kv_type="f32")
    plain = qwen1_forward(W, cfg, prompt + r.ids[:-1], 1.0, False)
    m = measure(r, plain)
    report("negative control qwen1 (reference without NTK/log-n)", m, BOUND, "  [must exceed]")
    assert m.worst > 100 * BOUND
