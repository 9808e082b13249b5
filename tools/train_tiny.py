#!/usr/bin/env python3
"""Train a tiny, genuinely trained Qwen2-, Qwen3- or Qwen3.5-architecture model fixture on this CPU.

The result is a Hugging Face directory written by `transformers`' own `save_pretrained`
(config.json, generation_config.json, model.safetensors in float32, tokenizer.json,
tokenizer_config.json with the real Qwen ChatML chat template) plus TRAINING.md with the
command, seed, hyper-parameters, wall time, losses and the full training log.

Data: ../shared/data/text/wiki.test.raw (English, WikiText-2 raw test split) and
xiyouji.txt (Chinese, Journey to the West). The last --heldout-frac of each text (cut at a
line boundary) is held out and never trained on; it is used for the held-out loss.
A small share of the training windows are ChatML conversations (copy / continue tasks built
from the training text), rendered with the real Qwen chat template.

Tokenizer: byte-level BPE trained here with `tokenizers`, using Qwen2's normalizer (NFC),
pre-tokenizer (the Qwen2 Split regex + ByteLevel), ByteLevel decoder and post-processor.
Added tokens follow the real Qwen layout: they come after the BPE vocabulary, and
config.vocab_size is padded past the tokenizer size (as in the real Qwen models, whose
embedding has more rows than the tokenizer has tokens).

Nothing is downloaded: configs are constructed locally and HF_HUB_OFFLINE=1 is set.
Fully seeded and deterministic for a fixed --threads value.

Example:
  .venv/bin/python tools/train_tiny.py --arch qwen2 --out tests/models/qwen2-tiny
  .venv/bin/python tools/train_tiny.py --arch qwen3 --out tests/models/qwen3-tiny
  .venv/bin/python tools/train_tiny.py --arch qwen35 --out tests/models/qwen35-tiny

qwen35 (Qwen3_5ForCausalLM, hybrid Gated DeltaNet + gated attention) uses Qwen3.5's own pre-tokenizer
regex (transformers' tokenization_qwen3_5.PRETOKENIZE_REGEX: combining marks join letter runs) and the
real Qwen3.5 chat template (tests/data/chat/qwen3.5.jinja).
"""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

import argparse
import json
import math
import random
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = (REPO / ".." / "shared" / "data").resolve()

# Qwen2's pre-tokenizer split regex (same as in Qwen2/2.5/3 tokenizer.json).
QWEN2_SPLIT_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

EOT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
THINK = "<think>"
END_THINK = "</think>"

# Per-architecture defaults. qwen2 mirrors Qwen2.5-7B-style untied lm_head with q/k/v bias;
# qwen3 mirrors Qwen3-0.6B-style tied embeddings, q_norm/k_norm and head_dim * heads != hidden.
ARCH_DEFAULTS = {
    "qwen2": dict(hidden=128, layers=4, heads=4, kv_heads=2, head_dim=32, intermediate=384,
                  tie=False, rope_theta=10000.0, max_pos=1024, template="qwen2.5-instruct.jinja"),
    "qwen3": dict(hidden=128, layers=4, heads=4, kv_heads=2, head_dim=64, intermediate=384,
                  tie=True, rope_theta=1000000.0, max_pos=1024, template="qwen3.jinja"),
    # Qwen3.5-0.8B-style: tied, three Gated DeltaNet layers then one gated full-attention layer, a quarter of
    # each attention head rotary; linear layers with 2 key heads / 4 value heads of 32 dims, 4-tap conv.
    "qwen35": dict(hidden=128, layers=4, heads=4, kv_heads=2, head_dim=64, intermediate=384,
                   tie=True, rope_theta=10000000.0, max_pos=1024, template="qwen3.5.jinja"),
}
QWEN35_LINEAR = dict(linear_conv_kernel_dim=4, linear_key_head_dim=32, linear_value_head_dim=32,
                     linear_num_key_heads=2, linear_num_value_heads=4)


def log(msg, lines=None):
    print(msg, flush=True)
    if lines is not None:
        lines.append(msg)


# ----------------------------------------------------------------------------- data

def split_heldout(text, frac):
    """Return (train, heldout): heldout is the tail of `text`, starting at a line boundary."""
    cut = int(len(text) * (1.0 - frac))
    nl = text.find("\n", cut)
    cut = len(text) if nl < 0 else nl + 1
    return text[:cut], text[cut:]


def split_docs(text, heading_re):
    """Split `text` into documents, each starting at a line that matches heading_re."""
    starts = [m.start() for m in re.finditer(heading_re, text, flags=re.M)]
    if not starts or starts[0] != 0:
        starts = [0] + starts
    docs = [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])]
    return [d for d in docs if d.strip()]


def load_texts(data_dir, frac):
    wiki = (data_dir / "text" / "wiki.test.raw").read_text(encoding="utf-8")
    xyj = (data_dir / "text" / "xiyouji.txt").read_text(encoding="utf-8")
    en_train, en_val = split_heldout(wiki, frac)
    zh_train, zh_val = split_heldout(xyj, frac)
    return dict(
        en_train=split_docs(en_train, r"^ = [^=].* = $"),
        zh_train=split_docs(zh_train, r"^第.{1,8}回"),
        en_val=en_val,
        zh_val=zh_val,
    )


def sentences_en(docs):
    out = []
    for d in docs:
        for line in d.split("\n"):
            line = line.strip()
            if not line or line.startswith("="):
                continue
            parts = [p.strip() for p in line.split(" . ")]
            out.append([p + " ." for p in parts if len(p) > 10])
    return [s for s in out if len(s) >= 2]


def sentences_zh(docs):
    out = []
    for d in docs:
        for line in d.split("\n"):
            line = line.strip()
            if not line or line.startswith("第"):
                continue
            parts = [p + "。" for p in line.split("。") if len(p) > 3]
            out.append(parts)
    return [s for s in out if len(s) >= 2]


def make_chats(texts, n, rng, arch):
    """Small ChatML conversations built from training text: copy and continue tasks."""
    en = sentences_en(texts["en_train"])
    zh = sentences_zh(texts["zh_train"])
    chats = []
    for _ in range(n):
        lang = "en" if rng.random() < 0.5 else "zh"
        para = rng.choice(en if lang == "en" else zh)
        i = rng.randrange(len(para) - 1)
        first = para[i][:200]
        rest = " ".join(para[i + 1:i + 3]) if lang == "en" else "".join(para[i + 1:i + 3])
        rest = rest[:300]
        if rng.random() < 0.5:
            user = ("Repeat this sentence: " if lang == "en" else "请重复这句话：") + first
            answer = first
        else:
            user = ("Continue the text: " if lang == "en" else "续写：") + first
            answer = rest
        msgs = []
        r = rng.random()
        if r < 0.3:
            msgs.append({"role": "system", "content": "You are a helpful assistant."})
        elif r < 0.4:
            msgs.append({"role": "system", "content": "你是一个有用的助手。"})
        msgs += [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
        chats.append(msgs)
    return chats


# ----------------------------------------------------------------------------- tokenizer

def split_regex(arch):
    if arch == "qwen35":
        from transformers.models.qwen3_5.tokenization_qwen3_5 import PRETOKENIZE_REGEX
        return PRETOKENIZE_REGEX
    return QWEN2_SPLIT_REGEX


def build_tokenizer(texts, bpe_vocab, added, arch="qwen2"):
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, processors, trainers
    from tokenizers.models import BPE

    tok = Tokenizer(BPE(dropout=None, unk_token=None, continuing_subword_prefix="",
                        end_of_word_suffix="", fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(split_regex(arch)), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(
        vocab_size=bpe_vocab,
        min_frequency=2,
        show_progress=False,
        special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = texts["en_train"] + texts["zh_train"]
    tok.train_from_iterator(corpus, trainer=trainer, length=len(corpus))
    assert tok.get_vocab_size() == bpe_vocab, tok.get_vocab_size()
    # The Python ByteLevel decoder constructor takes no options; set them (as in the real Qwen
    # tokenizer.json) through the serialized form. They do not change what decoding produces.
    j = json.loads(tok.to_str())
    j["decoder"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    return Tokenizer.from_str(json.dumps(j))


def check_pretokenizer_matches_real(tok, data_dir, arch="qwen2"):
    """Our normalizer / pre-tokenizer / decoder must be the ones in the real Qwen tokenizer.json (for Qwen3.5,
    whose tokenizer.json is not bundled: Qwen3's with transformers' Qwen3.5 split regex)."""
    real_path = data_dir / "qwen3-tokenizer" / "tokenizer.json"
    if not real_path.exists():
        return "real Qwen tokenizer.json not found; skipped comparison"
    real = json.loads(real_path.read_text(encoding="utf-8"))
    if arch == "qwen35":
        real["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {"Regex": split_regex(arch)}
    ours = json.loads(tok.to_str())
    for key in ("normalizer", "pre_tokenizer", "decoder"):
        if ours[key] != real[key]:
            raise SystemExit(f"{key} differs from {real_path}:\n ours={ours[key]}\n real={real[key]}")
    return f"normalizer, pre_tokenizer, decoder identical to {real_path}" + (
        " (with Qwen3.5's split regex)" if arch == "qwen35" else "")


def wrap_tokenizer(tok, arch, template):
    from tokenizers import AddedToken
    from transformers import Qwen2Tokenizer

    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in (EOT, IM_START, IM_END)])
    if arch in ("qwen3", "qwen35"):
        # As in the real Qwen3 tokenizer: <think> / </think> are added but not special tokens.
        tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in (THINK, END_THINK)])
    hf = Qwen2Tokenizer(
        tokenizer_object=tok,
        bos_token=None,
        eos_token=IM_END,
        pad_token=EOT,
        unk_token=None,
        additional_special_tokens=[IM_START, IM_END],
        add_prefix_space=False,
        clean_up_tokenization_spaces=False,
        split_special_tokens=False,
        errors="replace",
        model_max_length=131072,
        chat_template=template,
    )
    return hf


def encode_docs(tok, docs, eot_id):
    ids = []
    for enc in tok.encode_batch(docs, add_special_tokens=False):
        ids.extend(enc.ids)
        ids.append(eot_id)
    return np.asarray(ids, dtype=np.int64)


# ----------------------------------------------------------------------------- model

def build_model(arch, a, vocab_size, ids):
    import torch
    from transformers import GenerationConfig

    common = dict(
        vocab_size=vocab_size,
        hidden_size=a.hidden,
        intermediate_size=a.intermediate,
        num_hidden_layers=a.layers,
        num_attention_heads=a.heads,
        num_key_value_heads=a.kv_heads,
        hidden_act="silu",
        max_position_embeddings=a.max_pos,
        initializer_range=0.02,
        rms_norm_eps=1e-6,
        use_cache=True,
        tie_word_embeddings=a.tie,
        rope_parameters={"rope_type": "default", "rope_theta": a.rope_theta},
        use_sliding_window=False,
        attention_dropout=0.0,
        bos_token_id=ids[EOT],
        eos_token_id=ids[IM_END],
        dtype="float32",
    )
    if arch == "qwen2":
        from transformers import Qwen2Config, Qwen2ForCausalLM
        assert a.head_dim == a.hidden // a.heads, "Qwen2 has no head_dim parameter"
        cfg = Qwen2Config(**common)
        model = Qwen2ForCausalLM(cfg)
        gen = GenerationConfig(bos_token_id=ids[EOT], eos_token_id=[ids[IM_END], ids[EOT]],
                               pad_token_id=ids[EOT], do_sample=True, temperature=0.7, top_p=0.8,
                               top_k=20, repetition_penalty=1.05)
    elif arch == "qwen35":
        from transformers import Qwen3_5ForCausalLM, Qwen3_5TextConfig
        common.pop("use_sliding_window")
        common["rope_parameters"] = {"rope_type": "default", "rope_theta": a.rope_theta, "partial_rotary_factor": 0.25,
                                     "mrope_section": [4, 2, 2], "mrope_interleaved": True}
        types = ["full_attention" if (i + 1) % 4 == 0 else "linear_attention" for i in range(a.layers)]
        cfg = Qwen3_5TextConfig(head_dim=a.head_dim, attention_bias=False, layer_types=types, **QWEN35_LINEAR, **common)
        model = Qwen3_5ForCausalLM(cfg)
        gen = GenerationConfig(bos_token_id=ids[EOT], eos_token_id=[ids[IM_END], ids[EOT]],
                               pad_token_id=ids[EOT], do_sample=True, temperature=0.6, top_p=0.95,
                               top_k=20)
    else:
        from transformers import Qwen3Config, Qwen3ForCausalLM
        cfg = Qwen3Config(head_dim=a.head_dim, attention_bias=False, **common)
        model = Qwen3ForCausalLM(cfg)
        gen = GenerationConfig(bos_token_id=ids[EOT], eos_token_id=[ids[IM_END], ids[EOT]],
                               pad_token_id=ids[EOT], do_sample=True, temperature=0.6, top_p=0.95,
                               top_k=20)
    model.generation_config = gen
    model.to(torch.float32)
    return model


# ----------------------------------------------------------------------------- training

def lr_at(step, a):
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    t = (step - a.warmup) / max(1, a.steps - a.warmup)
    return a.lr * (a.min_lr_frac + (1 - a.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * t)))


def sample_batch(streams, weights, bs, seq, rng):
    import torch
    rows = []
    names = list(streams)
    for _ in range(bs):
        s = streams[names[rng.choice(len(names), p=weights)]]
        off = int(rng.integers(0, len(s) - seq - 1))
        rows.append(s[off:off + seq + 1])
    return torch.from_numpy(np.stack(rows))


def windows(stream, seq, max_windows=None):
    """Non-overlapping windows of seq+1 tokens (every token after the first of each is predicted once)."""
    n = (len(stream) - 1) // seq
    if max_windows is not None:
        n = min(n, max_windows)
    return np.stack([stream[i * seq:i * seq + seq + 1] for i in range(n)])


def evaluate(model, rows):
    """Mean next-token loss (nats) over the rows (N, seq+1)."""
    import torch
    tot, cnt = 0.0, 0
    model.eval()
    with torch.no_grad():
        for b in range(0, len(rows), 16):
            x = torch.from_numpy(rows[b:b + 16])
            logits = model(input_ids=x[:, :-1]).logits
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]).float(), x[:, 1:].reshape(-1), reduction="sum")
            tot += loss.item()
            cnt += x[:, 1:].numel()
    model.train()
    return tot / max(1, cnt)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--arch", choices=sorted(ARCH_DEFAULTS), required=True)
    p.add_argument("--out", required=True, help="output directory (created; existing model files overwritten)")
    p.add_argument("--steps", type=int, default=1200, help="optimizer steps (default 1200)")
    p.add_argument("--seed", type=int, default=1234, help="seed for all RNGs (default 1234)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2; results depend on it)")
    p.add_argument("--data-dir", default=str(DEFAULT_DATA), help=f"shared data dir (default {DEFAULT_DATA})")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (AdamW)")
    p.add_argument("--min-lr-frac", type=float, default=0.1, help="final LR as a fraction of peak (cosine)")
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--bpe-vocab", type=int, default=4000, help="BPE vocabulary size (before added tokens)")
    p.add_argument("--vocab-size", type=int, default=4096, help="config.vocab_size (embedding rows, padded)")
    p.add_argument("--heldout-frac", type=float, default=0.05)
    p.add_argument("--chat-frac", type=float, default=0.1, help="share of training windows from ChatML data")
    p.add_argument("--n-chats", type=int, default=4000)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--log-every", type=int, default=50)
    for k in ("hidden", "layers", "heads", "kv_heads", "head_dim", "intermediate", "max_pos"):
        p.add_argument("--" + k.replace("_", "-"), type=int, default=None, help="default: per arch")
    p.add_argument("--rope-theta", type=float, default=None, help="default: per arch")
    p.add_argument("--tie", choices=["true", "false"], default=None, help="tie_word_embeddings (default per arch)")
    p.add_argument("--no-expected", action="store_true", help="do not run tools/make_expected.py afterwards")
    a = p.parse_args(argv)
    d = ARCH_DEFAULTS[a.arch]
    for k, v in d.items():
        if k == "template":
            continue
        if getattr(a, k, None) is None:
            setattr(a, k, v)
    if isinstance(a.tie, str):
        a.tie = a.tie == "true"
    a.template = d["template"]
    return a


def main(argv=None):
    a = parse_args(argv)
    import torch
    import transformers

    t_start, c_start = time.time(), time.process_time()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    random.seed(a.seed)
    np.random.seed(a.seed)
    torch.use_deterministic_algorithms(True)
    transformers.set_seed(a.seed)
    data_dir = Path(a.data_dir)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    L = []  # log lines kept for TRAINING.md

    log(f"torch {torch.__version__}, transformers {transformers.__version__}, threads {a.threads}, seed {a.seed}", L)
    texts = load_texts(data_dir, a.heldout_frac)
    log(f"data: en {len(texts['en_train'])} train docs ({sum(map(len, texts['en_train']))} chars) "
        f"+ {len(texts['en_val'])} held-out chars; zh {len(texts['zh_train'])} train docs "
        f"({sum(map(len, texts['zh_train']))} chars) + {len(texts['zh_val'])} held-out chars", L)

    t0 = time.time()
    tok = build_tokenizer(texts, a.bpe_vocab, None, a.arch)
    log(check_pretokenizer_matches_real(tok, data_dir, a.arch), L)
    template_path = data_dir / "chat-templates" / a.template
    if not template_path.exists():
        template_path = REPO / "tests" / "data" / "chat" / a.template
    template = template_path.read_text(encoding="utf-8")
    hf_tok = wrap_tokenizer(tok, a.arch, template)
    ids = {t: hf_tok.convert_tokens_to_ids(t) for t in (EOT, IM_START, IM_END)}
    if a.arch in ("qwen3", "qwen35"):
        ids.update({t: hf_tok.convert_tokens_to_ids(t) for t in (THINK, END_THINK)})
    n_tok = len(hf_tok)
    assert n_tok <= a.vocab_size, (n_tok, a.vocab_size)
    log(f"tokenizer: BPE {a.bpe_vocab} + added {n_tok - a.bpe_vocab} = {n_tok} tokens "
        f"({time.time() - t0:.1f}s); added ids {ids}; config.vocab_size {a.vocab_size}", L)

    backend = hf_tok.backend_tokenizer
    eot = ids[EOT]
    streams = {
        "en": encode_docs(backend, texts["en_train"], eot),
        "zh": encode_docs(backend, texts["zh_train"], eot),
    }
    rng_py = random.Random(a.seed)
    chats = make_chats(texts, a.n_chats, rng_py, a.arch)
    chat_strs = [hf_tok.apply_chat_template(c, tokenize=False) for c in chats]
    streams["chat"] = encode_docs(backend, chat_strs, eot)
    val = {
        "en": encode_docs(backend, [texts["en_val"]], eot)[:-1],
        "zh": encode_docs(backend, [texts["zh_val"]], eot)[:-1],
    }
    for k, v in streams.items():
        log(f"train stream {k}: {len(v)} tokens", L)
    for k, v in val.items():
        log(f"held-out {k}: {len(v)} tokens", L)
    log("chat sample: " + repr(chat_strs[0][:300]), L)
    w_text = (1.0 - a.chat_frac)
    n_en, n_zh = len(streams["en"]), len(streams["zh"])
    # English and Chinese in proportion to sqrt(size), so the smaller English text is seen more often.
    se, sz = math.sqrt(n_en), math.sqrt(n_zh)
    weights = np.array([w_text * se / (se + sz), w_text * sz / (se + sz), a.chat_frac])
    log(f"sampling weights en/zh/chat: {np.round(weights, 3).tolist()}", L)

    model = build_model(a.arch, a, a.vocab_size, ids)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model {type(model).__name__}: hidden {a.hidden}, layers {a.layers}, heads {a.heads}, kv_heads "
        f"{a.kv_heads}, head_dim {a.head_dim}, intermediate {a.intermediate}, tie {a.tie}, rope_theta "
        f"{a.rope_theta}, params {n_params}", L)

    decay, no_decay = [], []
    for name, prm in model.named_parameters():
        (decay if prm.dim() >= 2 else no_decay).append(prm)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    rng = np.random.default_rng(a.seed)
    tokens_per_step = a.batch_size * a.seq_len
    log(f"training: steps {a.steps}, batch {a.batch_size} x {a.seq_len} = {tokens_per_step} tokens/step, "
        f"lr {a.lr} warmup {a.warmup} cosine to {a.min_lr_frac * a.lr:g}, AdamW(0.9, 0.95) wd "
        f"{a.weight_decay}, clip {a.grad_clip}", L)

    model.train()
    t_train, c_train = time.time(), time.process_time()
    log(f"load average at start of training: {os.getloadavg()[0]:.2f} (machine has {os.cpu_count()} CPUs)", L)
    run_loss, run_n = 0.0, 0
    for step in range(a.steps):
        lr = lr_at(step, a)
        for g in opt.param_groups:
            g["lr"] = lr
        x = sample_batch(streams, weights, a.batch_size, a.seq_len, rng)
        out_ = model(input_ids=x[:, :-1])
        logits = out_.logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), a.grad_clip)
        opt.step()
        run_loss += loss.item()
        run_n += 1
        if (step + 1) % a.log_every == 0 or step == 0:
            el = time.time() - t_train
            log(f"step {step + 1:5d}/{a.steps} loss {run_loss / run_n:.4f} lr {lr:.2e} gnorm {gn:.3f} "
                f"elapsed {el:.0f}s ({(step + 1) * tokens_per_step / el:.0f} tok/s)", L)
            run_loss, run_n = 0.0, 0
        if (step + 1) % a.eval_every == 0 and step + 1 < a.steps:
            ve = evaluate(model, windows(val["en"], a.seq_len, 16))
            vz = evaluate(model, windows(val["zh"], a.seq_len, 16))
            log(f"eval step {step + 1}: held-out en {ve:.4f} zh {vz:.4f} (first 16 windows each)", L)
    train_time, train_cpu = time.time() - t_train, time.process_time() - c_train
    log(f"load average at end of training: {os.getloadavg()[0]:.2f}", L)

    # Final numbers: full held-out sets; training loss on a fixed sample of training windows.
    fin = {}
    for k in ("en", "zh"):
        fin[f"heldout_{k}"] = evaluate(model, windows(val[k], a.seq_len))
    tr_rng = np.random.default_rng(a.seed + 1)
    for k in ("en", "zh", "chat"):
        s = streams[k]
        offs = tr_rng.integers(0, len(s) - a.seq_len - 1, size=64)
        fin[f"train_{k}"] = evaluate(model, np.stack([s[o:o + a.seq_len + 1] for o in offs]))
    for k, v in fin.items():
        log(f"final {k}: loss {v:.4f} ppl {math.exp(v):.2f}", L)
    if a.arch == "qwen2":
        for pr in ("q", "k", "v"):
            bn = [float(getattr(model.model.layers[i].self_attn, pr + "_proj").bias.detach().abs().max())
                  for i in range(a.layers)]
            log(f"{pr}_proj bias max|b| per layer: {[round(v, 4) for v in bn]}", L)

    model.eval()
    model.save_pretrained(out, safe_serialization=True)
    hf_tok.save_pretrained(out, save_jinja_files=False)  # chat template stays in tokenizer_config.json
    total, total_cpu = time.time() - t_start, time.process_time() - c_start
    log(f"wall time: training {train_time:.0f}s, total {total:.0f}s; process CPU time: training "
        f"{train_cpu:.0f}s, total {total_cpu:.0f}s", L)

    cmd = " ".join(shlex.quote(x) for x in [".venv/bin/python", "tools/train_tiny.py"] + (argv or sys.argv[1:]))
    hp = {k: v for k, v in vars(a).items() if k not in ("out", "data_dir", "no_expected")}
    files = sorted(p.name for p in out.iterdir() if p.is_file() and p.name not in ("TRAINING.md", "expected.json"))
    md = [
        f"# {out.name}: a tiny trained {type(model).__name__} fixture",
        "",
        "Written by `tools/train_tiny.py` with `transformers` `save_pretrained` (weights in float32).",
        "Trained from scratch on this machine's CPU; deterministic for the same seed and thread count.",
        "",
        "## Command",
        "",
        "```",
        f"HF_HUB_OFFLINE=1 {cmd}",
        "```",
        "",
        f"Seed: {a.seed}. Threads: {a.threads}. torch {torch.__version__}, transformers "
        f"{transformers.__version__}. Wall time: {train_time:.0f} s training, {total:.0f} s total "
        f"(process CPU time {train_cpu:.0f} s / {total_cpu:.0f} s; wall time grows when other jobs share "
        f"the CPUs, see the tok/s column and load averages in the log).",
        "",
        "## Model and data",
        "",
        f"- {type(model).__name__}: hidden {a.hidden}, {a.layers} layers, {a.heads} heads / {a.kv_heads} KV "
        f"heads (GQA), head_dim {a.head_dim}, intermediate {a.intermediate}, tie_word_embeddings "
        f"{str(a.tie).lower()}, rope_theta {a.rope_theta:g}, {n_params} parameters.",
        f"- Tokenizer: byte-level BPE, {a.bpe_vocab} tokens trained with `tokenizers` on the training text "
        f"(Qwen2 NFC normalizer, Split regex + ByteLevel pre-tokenizer, ByteLevel decoder), then the added "
        f"tokens {', '.join(f'`{t}` = {i}' for t, i in ids.items())}: {n_tok} tokens in all. "
        f"config.vocab_size is {a.vocab_size}: embedding rows {n_tok}..{a.vocab_size - 1} belong to no token "
        f"(as in the real Qwen models).",
        f"- Chat template: the real `{a.template}`; eos_token `<|im_end|>`, pad_token `<|endoftext|>`, no bos.",
        f"- Data: `wiki.test.raw` (English) and `xiyouji.txt` (Chinese); the last {a.heldout_frac:.0%} of each "
        f"file (from a line boundary) is held out. Training windows sampled with weights en/zh/chat = "
        f"{np.round(weights, 3).tolist()}; chat = {a.n_chats} ChatML copy/continue conversations built "
        f"from the training text and rendered with the chat template.",
        "",
        "## Hyper-parameters",
        "",
        "```json",
        json.dumps(hp, indent=1, sort_keys=True),
        "```",
        "",
        "## Final losses (nats/token)",
        "",
        "| set | loss | perplexity |",
        "| --- | --- | --- |",
    ] + [f"| {k} | {v:.4f} | {math.exp(v):.2f} |" for k, v in fin.items()] + [
        "",
        "train_*: 64 random training windows per stream; heldout_*: every token of the held-out text.",
        "",
        "## Files",
        "",
    ] + [f"- `{f}` ({(out / f).stat().st_size} bytes)" for f in files] + [
        "- `expected.json`: golden outputs from `transformers` (regenerate with "
        f"`.venv/bin/python tools/make_expected.py {out}`)",
        "",
        "## Training log",
        "",
        "```",
    ] + L + ["```", ""]
    (out / "TRAINING.md").write_text("\n".join(md), encoding="utf-8")
    log(f"wrote {out}")

    if not a.no_expected:
        subprocess.run([sys.executable, str(REPO / "tools" / "make_expected.py"), str(out)], check=True)


if __name__ == "__main__":
    main()
