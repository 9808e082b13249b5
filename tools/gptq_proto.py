#!/usr/bin/env python3
"""Numpy prototype of GPTQ-style error compensation for Q4_0 (issue 7), to find what works before the
C++ product path (src/quant/gptq.cpp).

Loads a Hugging Face model in float32, collects H = X^T X / n per linear layer from calibration text
(or from text the model samples itself: --self-calib), quantizes every 4-bit matrix of the
w4a16_g32 recipe (attention and FFN projections; rows whose length is not a multiple of 32 stay f32)
with several methods, writes the dequantized ("fake-quantized") weights into the model and measures the
mean KL(f32 || fake-quant) over windows of an evaluation text the way `edgellm perplexity` does (first
half of each window is context, the second half is scored).

Usage: .venv/bin/python tools/gptq_proto.py HF_DIR [--methods rtn,search,gptq,gptq_search]
"""
from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

QMIN, QMAX, G = -8, 7, 32


def fp16(x):
    return np.asarray(x, dtype=np.float16).astype(np.float64)


def rtn_scales(w):
    """ggml's Q4_0 scale per group: the signed extreme maps to -8. w: [rows, 32] -> d [rows]."""
    idx = np.argmax(np.abs(w), axis=1)
    mx = w[np.arange(w.shape[0]), idx]
    return fp16(mx / -8.0)


def quant_levels(x, d):
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(d[:, None] != 0, np.floor(x / d[:, None] + 0.5), 0)
    return np.clip(q, QMIN, QMAX)


def searched_scales(w, imp, n_cand=32, n_refit=2):
    """Per row of w [rows, 32], the fp16 scale minimising sum imp * (w - d q)^2 (imp [32])."""
    rows = w.shape[0]
    amax = np.abs(w).max(axis=1)
    best_d = rtn_scales(w)
    q = quant_levels(w, best_d)
    best_e = ((w - best_d[:, None] * q) ** 2 * imp).sum(1)
    for sign, reach in ((1, 7.0), (-1, 8.0)):
        for frac in np.linspace(0.6, 1.1, n_cand):
            d = fp16(sign * amax * frac / reach)
            for it in range(n_refit + 1):
                q = quant_levels(w, d)
                e = ((w - d[:, None] * q) ** 2 * imp).sum(1)
                better = (e < best_e) & (d != 0)
                best_e = np.where(better, e, best_e)
                best_d = np.where(better, d, best_d)
                if it == n_refit:
                    break
                num = (imp * q * w).sum(1)
                den = (imp * q * q).sum(1)
                with np.errstate(divide="ignore", invalid="ignore"):
                    d = fp16(np.where(den > 0, num / den, d))
    return best_d


def quantize_plain(W, imp, search):
    out = np.empty_like(W)
    for g0 in range(0, W.shape[1], G):
        w = W[:, g0:g0 + G]
        d = searched_scales(w, imp[g0:g0 + G]) if search else rtn_scales(w)
        out[:, g0:g0 + G] = d[:, None] * quant_levels(w, d)
    return out


def gptq(W, H, search, damp=0.01, act_order=False, refit=False):
    """GPTQ (Frantar et al. 2022) with Q4_0 groups of 32 consecutive input channels; the scale of a group
    is chosen when the quantizer reaches it, from the error-updated weights."""
    W = W.copy()
    n = W.shape[1]
    H = H.copy()
    dead = np.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    H += damp * np.mean(np.diag(H)) * np.eye(n)
    L = np.linalg.cholesky(H)
    Hinv = np.linalg.inv(L).T @ np.linalg.inv(L)  # H^-1
    U = np.linalg.cholesky(Hinv).T  # upper: Hinv = U^T U
    Q = np.zeros_like(W)
    d = None
    imp_diag = np.diag(H)
    for i in range(n):
        if i % G == 0:
            w = W[:, i:i + G]
            d = searched_scales(w, imp_diag[i:i + G]) if search else rtn_scales(w)
        q = d * quant_levels(W[:, i:i + 1], d)[:, 0]
        Q[:, i] = q
        err = (W[:, i] - q) / U[i, i]
        W[:, i + 1:] -= np.outer(err, U[i, i + 1:])
    return Q


def linear_modules(model):
    out = {}
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Linear) and "lm_head" not in name:
            out[name] = m
    return out


def collect_hessians(model, token_windows):
    mods = linear_modules(model)
    H = {k: None for k in mods}
    cnt = {k: 0 for k in mods}
    hooks = []
    for k, m in mods.items():
        def hook(mod, inp, out, k=k):
            x = inp[0].detach().reshape(-1, inp[0].shape[-1]).double()
            h = x.T @ x
            H[k] = h if H[k] is None else H[k] + h
            cnt[k] += x.shape[0]
        hooks.append(m.register_forward_hook(hook))
    with torch.no_grad():
        for win in token_windows:
            model(torch.tensor([win]))
    for h in hooks:
        h.remove()
    return {k: (H[k] / cnt[k]).numpy() for k in mods}


def windows_of(ids, ctx):
    return [ids[i:i + ctx] for i in range(0, len(ids) - ctx + 1, ctx)]


def eval_kl(base_logits, model, wins, ctx):
    kls = []
    with torch.no_grad():
        for bl, win in zip(base_logits, wins):
            lq = model(torch.tensor([win])).logits[0, ctx // 2 - 1:ctx - 1].double()
            lp = torch.log_softmax(bl, -1)
            lq = torch.log_softmax(lq, -1)
            kls.append((lp.exp() * (lp - lq)).sum(-1))
    k = torch.cat(kls)
    return k.mean().item(), (k.std() / np.sqrt(len(k))).item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--text", default=str(Path(__file__).resolve().parents[2] / "shared/data/text/wiki.test.raw"))
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--chunks", type=int, default=40)
    ap.add_argument("--calib-tokens", type=int, default=8192)
    ap.add_argument("--methods", default="rtn,search,gptq,gptq_search")
    ap.add_argument("--damp", type=float, default=0.01)
    ap.add_argument("--gamma-pow", type=float, default=1.0)
    ap.add_argument("--self-calib", action="store_true", help="calibrate on text the model samples itself")
    args = ap.parse_args()
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=torch.float32).eval()
    text = open(args.text, encoding="utf-8").read()
    ids = tok(text[: args.ctx * args.chunks * 12])["input_ids"]
    bos = tok.bos_token_id if getattr(tok, "add_bos_token", False) or (tok.bos_token_id is not None and ids[:1] == [tok.bos_token_id]) else None
    wins = windows_of(ids, args.ctx)[: args.chunks]
    if bos is not None:
        wins = [[bos] + w[1:] for w in wins]
    # Calibration: the last 5% of the text (held out from the fixtures' training, and away from the
    # evaluated windows), or self-generated samples.
    if args.self_calib:
        cal = []
        with torch.no_grad():
            n_seq = max(1, args.calib_tokens // args.ctx)
            start = torch.tensor([[bos if bos is not None else (tok.eos_token_id or 0)]] * n_seq)
            outp = model.generate(start, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                                  max_new_tokens=args.ctx - 1, min_new_tokens=args.ctx - 1)
            cal = outp.tolist()
    else:
        tail = text[int(len(text) * 0.95):]
        cids = tok(tail)["input_ids"][: args.calib_tokens]
        cal = windows_of(cids, min(args.ctx * 2, 512))
    t0 = time.time()
    Hs = collect_hessians(model, cal)
    print(f"hessians: {len(Hs)} matrices from {sum(map(len, cal))} tokens, {time.time() - t0:.1f}s")
    with torch.no_grad():
        base = [model(torch.tensor([w])).logits[0, args.ctx // 2 - 1:args.ctx - 1].double() for w in wins]
    for method in args.methods.split(","):
        m2 = copy.deepcopy(model)
        t0 = time.time()
        for name, lin in linear_modules(m2).items():
            W = lin.weight.detach().double().numpy()
            if W.shape[1] % G:
                continue
            H = Hs[name]
            if method == "rtn":
                Q = quantize_plain(W, np.ones(W.shape[1]), False)
            elif method == "search":
                Q = quantize_plain(W, np.ones(W.shape[1]), True)
            elif method == "search_gamma":
                # data-free: the RMSNorm weight in front of the matrix scales its input channels
                layer = m2.model.layers[int(name.split(".")[2])]
                gamma = None
                if any(k in name for k in ("q_proj", "k_proj", "v_proj")):
                    gamma = layer.input_layernorm.weight
                elif any(k in name for k in ("gate_proj", "up_proj")):
                    gamma = layer.post_attention_layernorm.weight
                imp = np.ones(W.shape[1]) if gamma is None else np.abs(gamma.detach().double().numpy()) ** args.gamma_pow
                Q = quantize_plain(W, imp, True)
            elif method == "search_diag":
                Q = quantize_plain(W, np.sqrt(np.diag(H)), True)
            elif method == "gptq":
                Q = gptq(W, H, False, args.damp)
            elif method == "gptq_search":
                Q = gptq(W, H, True, args.damp)
            else:
                raise SystemExit(f"unknown method {method}")
            lin.weight.data = torch.tensor(Q, dtype=torch.float32)
        kl, se = eval_kl(base, m2, wins, args.ctx)
        print(f"{method:14s} KL {kl:.5f} ± {se:.5f}   ({time.time() - t0:.1f}s)", flush=True)


if __name__ == "__main__":
    main()
