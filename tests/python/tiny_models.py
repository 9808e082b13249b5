"""Tiny random Hugging Face models (transformers + save_pretrained) for the reference tests.

Every model is seeded and small (2-3 layers, hidden 64-128, GQA, vocab >= 512). All parameters are
re-drawn after construction: transformers initialises norms to 1 and biases to 0 and uses a small
std for matrices, which would leave norms and biases untested and attention nearly uniform. Here
norm weights are drawn around 1 (+-40%), biases with std 0.5, matrices with std 1/sqrt(fan_in)
(embeddings std 1, or 0.1 when tied to lm_head; lm_head x2), so every tensor changes the logits,
attention is peaked, and greedy decoding does not get stuck repeating one token.

Qwen 1 has no modeling code in transformers. Its math equals Qwen2ForCausalLM's up to its training
length (issue 3): fused c_attn = concat(q, k, v) rows with bias, w2 = gate, w1 = up, c_proj = down,
no GQA, no bias on attn.c_proj. `save_qwen1_dir` writes a Qwen2ForCausalLM's weights under Qwen 1's
remote-code names and config keys, so the same weights can be run by transformers (as Qwen2) and by
edgellm (as Qwen 1).
"""

from __future__ import annotations

import copy
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
import transformers  # noqa: E402
from transformers import (LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM, Qwen3_5ForCausalLM,
                          Qwen3_5TextConfig, Qwen3Config, Qwen3ForCausalLM)

torch.set_num_threads(1)  # tiny matrices: threads cost more than they give on 2 shared cores
transformers.utils.logging.disable_progress_bar()


@dataclass
class ModelSpec:
    name: str
    family: str          # "qwen2", "qwen3", "qwen35", "llama", or "qwen1" (built as Qwen2, saved as Qwen 1)
    config: dict         # keyword arguments of the transformers config
    seed: int
    prompt_len: int = 12
    notes: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def vocab(self) -> int:
        return self.config["vocab_size"]


def _rope(theta, **scaling):
    d = {"rope_type": "default", "rope_theta": float(theta)}
    d.update(scaling)
    return d


SPECS: dict[str, ModelSpec] = {s.name: s for s in [
    ModelSpec("qwen2", "qwen2", dict(
        vocab_size=640, hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-6, tie_word_embeddings=False,
        rope_parameters=_rope(10000.0)), seed=101, notes="untied, GQA 4/2"),
    ModelSpec("qwen2-tied", "qwen2", dict(
        vocab_size=512, hidden_size=96, intermediate_size=192, num_hidden_layers=3, num_attention_heads=6,
        num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-5, tie_word_embeddings=True,
        rope_parameters=_rope(1000000.0)), seed=102, notes="tied embeddings, 3 layers, GQA 6/2"),
    ModelSpec("qwen3", "qwen3", dict(
        vocab_size=576, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=32, max_position_embeddings=256, rms_norm_eps=1e-6,
        tie_word_embeddings=True, rope_parameters=_rope(1000000.0)), seed=103,
        notes="q/k norm, head_dim 32 != hidden/heads, tied"),
    ModelSpec("llama", "llama", dict(
        vocab_size=512, hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=8,
        num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-5, tie_word_embeddings=False,
        rope_parameters=_rope(10000.0)), seed=104, notes="GQA 8/2"),
    ModelSpec("llama-rope-llama3", "llama", dict(
        vocab_size=512, hidden_size=64, intermediate_size=192, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-5, tie_word_embeddings=False,
        rope_parameters=_rope(500000.0, rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                              high_freq_factor=4.0, original_max_position_embeddings=32)), seed=105,
        notes="llama3 rope scaling; head_dim 16 puts frequencies in all three bands"),
    ModelSpec("llama-rope-linear", "llama", dict(
        vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=1, max_position_embeddings=256, rms_norm_eps=1e-6, tie_word_embeddings=False,
        rope_parameters=_rope(10000.0, rope_type="linear", factor=4.0)), seed=106,
        notes="linear rope scaling x4, MQA 4/1"),
    ModelSpec("qwen1", "qwen1", dict(
        vocab_size=600, hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=4, max_position_embeddings=8192, rms_norm_eps=1e-6, tie_word_embeddings=False,
        rope_parameters=_rope(10000.0)), seed=107,
        notes="Qwen 1 dir (fused c_attn, w1/w2/c_proj) vs Qwen2ForCausalLM on the same weights; "
              "seq_length 8192 so dynamic NTK / log-n never trigger"),
    # Qwen3.5: Gated DeltaNet layers + gated full attention. Prompts longer than a delta-rule chunk (64).
    ModelSpec("qwen35", "qwen35", dict(
        vocab_size=512, hidden_size=64, intermediate_size=96, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=2, head_dim=32, max_position_embeddings=512, rms_norm_eps=1e-6,
        tie_word_embeddings=False, layer_types=["linear_attention", "linear_attention", "linear_attention",
                                                 "full_attention"],
        rope_parameters=_rope(10000.0, partial_rotary_factor=0.25, mrope_section=[2, 1, 1], mrope_interleaved=True),
        linear_conv_kernel_dim=4, linear_key_head_dim=16, linear_value_head_dim=16, linear_num_key_heads=2,
        linear_num_value_heads=4), seed=108, prompt_len=70,
        notes="hybrid L,L,L,F; linear heads 2 key / 4 value (value heads share key heads), conv 4, rotary 8 of 32"),
    ModelSpec("qwen35-tied", "qwen35", dict(
        vocab_size=576, hidden_size=96, intermediate_size=128, num_hidden_layers=3, num_attention_heads=3,
        num_key_value_heads=1, head_dim=32, max_position_embeddings=512, rms_norm_eps=1e-6,
        tie_word_embeddings=True, layer_types=["linear_attention", "full_attention", "linear_attention"],
        rope_parameters=_rope(1000000.0, partial_rotary_factor=0.5, mrope_section=[4, 2, 2], mrope_interleaved=True),
        linear_conv_kernel_dim=3, linear_key_head_dim=32, linear_value_head_dim=32, linear_num_key_heads=3,
        linear_num_value_heads=3), seed=111, prompt_len=33,
        notes="tied, L,F,L, MQA 3/1, equal key/value head counts, conv 3, rotary 16 of 32; random Qwen3.5 "
              "models are 4-10x more sensitive to f16 weight rounding than Qwen3 ones (transformers alone: "
              "6e-3..2e-2 over seeds 110-113, qwen3 1.5e-3), so the seed keeps that effect under the 1e-2 bound"),
]}

ARCH_CLASSES = {
    "qwen2": (Qwen2Config, Qwen2ForCausalLM),
    "qwen1": (Qwen2Config, Qwen2ForCausalLM),
    "qwen3": (Qwen3Config, Qwen3ForCausalLM),
    "llama": (LlamaConfig, LlamaForCausalLM),
    "qwen35": (Qwen3_5TextConfig, Qwen3_5ForCausalLM),
}


def randomize_(model: torch.nn.Module, seed: int) -> None:
    """Re-draws every parameter (see the module docstring for the distributions)."""
    g = torch.Generator().manual_seed(seed)
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    zero_centred_norms = model.config.model_type.startswith("qwen3_5")
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1:
                if name.endswith("bias"):  # also Qwen3.5's dt_bias
                    vals = 0.5 * torch.randn(p.shape, generator=g, dtype=torch.float64)
                elif name.endswith("A_log"):  # Qwen3.5 decay rates exp(A_log) in [0.4, 2.7]
                    vals = -1.0 + 2.0 * torch.rand(p.shape, generator=g, dtype=torch.float64)
                elif zero_centred_norms and not name.endswith("linear_attn.norm.weight"):
                    # Qwen3.5's RMSNorms multiply by (1 + weight)
                    vals = -0.4 + 0.8 * torch.rand(p.shape, generator=g, dtype=torch.float64)
                else:  # RMSNorm weights (input/post-attention/final/q_norm/k_norm)
                    vals = 0.6 + 0.8 * torch.rand(p.shape, generator=g, dtype=torch.float64)
            elif p.ndim == 3:  # Qwen3.5's depthwise conv1d [channels, 1, K]
                vals = torch.randn(p.shape, generator=g, dtype=torch.float64) / math.sqrt(p.shape[2])
            elif "embed_tokens" in name:
                # Tied: logits = E . norm(h) and h contains the input embedding, so a large E makes every
                # token predict itself; a small E lets the layers' outputs dominate the residual stream.
                vals = torch.randn(p.shape, generator=g, dtype=torch.float64) * (0.1 if tied else 1.0)
            else:
                vals = torch.randn(p.shape, generator=g, dtype=torch.float64) / math.sqrt(p.shape[1])
                if name.startswith("lm_head"):
                    vals *= 2.0
            p.copy_(vals.to(p.dtype))


def make_model(spec: ModelSpec) -> torch.nn.Module:
    """The spec's model in float32, eval mode, eager attention, randomised with the spec's seed."""
    config_cls, model_cls = ARCH_CLASSES[spec.family]
    cfg = config_cls(**spec.config)
    cfg._attn_implementation = "eager"
    torch.manual_seed(spec.seed)
    model = model_cls(cfg).to(torch.float32).eval()
    randomize_(model, spec.seed)
    return model


def reference_copy(model: torch.nn.Module, round_to: torch.dtype | None = None) -> torch.nn.Module:
    """A float64 copy of `model` (the reference runs in float64, so its own rounding is negligible).

    round_to: first round every parameter through this dtype (e.g. float16), giving the exact
    weights a float16 file holds.
    """
    ref = copy.deepcopy(model)
    if round_to is not None:
        with torch.no_grad():
            for p in ref.parameters():
                p.copy_(p.to(round_to).to(p.dtype))
    return ref.to(torch.float64).eval()


def prompt_ids(spec: ModelSpec, n: int | None = None, seed: int | None = None) -> list[int]:
    rng = np.random.default_rng(spec.seed * 7 + 1 if seed is None else seed)
    return [int(x) for x in rng.integers(0, spec.vocab, size=n or spec.prompt_len)]


@torch.no_grad()
def hf_greedy(model: torch.nn.Module, prompt: list[int], n: int) -> tuple[list[int], np.ndarray]:
    """Greedy decoding with transformers' KV cache: prefill the prompt, then n-1 single-token steps.

    Returns the n generated ids and the logits rows in edgellm's --dump-logits layout:
    [n_prompt + n - 1, vocab] (every prompt position, then one row per decode step).
    """
    out = model(input_ids=torch.tensor([prompt]), use_cache=True)
    rows = [out.logits[0].double()]
    past = out.past_key_values
    gen = [int(out.logits[0, -1].argmax())]
    for _ in range(1, n):
        out = model(input_ids=torch.tensor([[gen[-1]]]), past_key_values=past, use_cache=True)
        past = out.past_key_values
        rows.append(out.logits[0].double())
        gen.append(int(out.logits[0, -1].argmax()))
    return gen, torch.cat(rows).numpy()


@torch.no_grad()
def hf_logits(model: torch.nn.Module, tokens: list[int]) -> np.ndarray:
    """Logits at every position of one full forward pass (teacher forcing), float64 numpy."""
    return model(input_ids=torch.tensor([tokens]), use_cache=False).logits[0].double().numpy()


def save_hf_dir(model: torch.nn.Module, path: Path, dtype: torch.dtype = torch.float32) -> Path:
    """save_pretrained in the given dtype (safetensors + config.json)."""
    path = Path(path)
    m = copy.deepcopy(model).to(dtype)
    m.save_pretrained(path, safe_serialization=True)
    return path


def state_dict_numpy(model: torch.nn.Module) -> dict[str, np.ndarray]:
    """float32 numpy copy of the state dict with Hugging Face names (tied lm_head dropped)."""
    sd = {}
    for k, v in model.state_dict().items():
        if k == "lm_head.weight" and model.config.tie_word_embeddings:
            continue
        sd[k] = v.detach().to(torch.float32).cpu().numpy().copy()
    return sd


# ---------------------------------------------------------------------------------------------
# Qwen 1 (QWenLMHeadModel remote-code layout)
# ---------------------------------------------------------------------------------------------

def qwen1_tensors_from_qwen2(model: Qwen2ForCausalLM) -> dict[str, torch.Tensor]:
    """Qwen2ForCausalLM weights (no GQA) under Qwen 1's names: c_attn = concat(q, k, v) rows."""
    cfg = model.config
    assert cfg.num_key_value_heads == cfg.num_attention_heads, "Qwen 1 has no GQA"
    sd = {k: v.detach() for k, v in model.state_dict().items()}
    out = {
        "transformer.wte.weight": sd["model.embed_tokens.weight"],
        "transformer.ln_f.weight": sd["model.norm.weight"],
        "lm_head.weight": sd["lm_head.weight"],
    }
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        q = f"transformer.h.{i}."
        out[q + "ln_1.weight"] = sd[p + "input_layernorm.weight"]
        out[q + "attn.c_attn.weight"] = torch.cat([sd[p + f"self_attn.{x}_proj.weight"] for x in "qkv"], dim=0)
        out[q + "attn.c_attn.bias"] = torch.cat([sd[p + f"self_attn.{x}_proj.bias"] for x in "qkv"], dim=0)
        out[q + "attn.c_proj.weight"] = sd[p + "self_attn.o_proj.weight"]
        out[q + "ln_2.weight"] = sd[p + "post_attention_layernorm.weight"]
        out[q + "mlp.w1.weight"] = sd[p + "mlp.up_proj.weight"]     # w1: up
        out[q + "mlp.w2.weight"] = sd[p + "mlp.gate_proj.weight"]   # w2: gate (silu applied to it)
        out[q + "mlp.c_proj.weight"] = sd[p + "mlp.down_proj.weight"]
    return out


def qwen1_config(*, vocab_size, hidden_size, num_hidden_layers, num_attention_heads, ffn, kv_channels,
                 seq_length, layer_norm_epsilon, rotary_emb_base, rotary_pct=1.0, use_dynamic_ntk=True,
                 use_logn_attn=True, tie_word_embeddings=False, torch_dtype="float32") -> dict:
    """A config.json as Qwen-1_8B's remote code reads it (intermediate_size = 2 x ffn)."""
    return {
        "architectures": ["QWenLMHeadModel"],
        "auto_map": {"AutoConfig": "configuration_qwen.QWenConfig",
                     "AutoModelForCausalLM": "modeling_qwen.QWenLMHeadModel"},
        "model_type": "qwen",
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "num_hidden_layers": num_hidden_layers,
        "num_attention_heads": num_attention_heads,
        "intermediate_size": 2 * ffn,
        "kv_channels": kv_channels,
        "seq_length": seq_length,
        "max_position_embeddings": seq_length,
        "layer_norm_epsilon": layer_norm_epsilon,
        "rotary_emb_base": rotary_emb_base,
        "rotary_pct": rotary_pct,
        "use_dynamic_ntk": use_dynamic_ntk,
        "use_logn_attn": use_logn_attn,
        "use_flash_attn": False,
        "no_bias": True,
        "scale_attn_weights": True,
        "emb_dropout_prob": 0.0,
        "attn_dropout_prob": 0.0,
        "initializer_range": 0.02,
        "tie_word_embeddings": tie_word_embeddings,
        "bf16": False,
        "fp16": torch_dtype == "float16",
        "fp32": torch_dtype == "float32",
        "torch_dtype": torch_dtype,
    }


def write_qwen1_dir(path: Path, tensors: dict[str, torch.Tensor], config: dict,
                    dtype: torch.dtype = torch.float32) -> Path:
    from safetensors.torch import save_file
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    save_file({k: v.to(dtype).contiguous() for k, v in tensors.items()}, str(path / "model.safetensors"),
              metadata={"format": "pt"})
    (path / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return path


def save_qwen1_dir(model: Qwen2ForCausalLM, path: Path, dtype: torch.dtype = torch.float32,
                   seq_length: int | None = None, use_dynamic_ntk: bool = True, use_logn_attn: bool = True) -> Path:
    """Writes `model` (a Qwen2ForCausalLM without GQA) as a Qwen 1 Hugging Face directory."""
    cfg = model.config
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    conf = qwen1_config(
        vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads, ffn=cfg.intermediate_size, kv_channels=head_dim,
        seq_length=seq_length or cfg.max_position_embeddings, layer_norm_epsilon=cfg.rms_norm_eps,
        rotary_emb_base=cfg.rope_parameters["rope_theta"], use_dynamic_ntk=use_dynamic_ntk,
        use_logn_attn=use_logn_attn, torch_dtype={torch.float32: "float32", torch.float16: "float16",
                                                  torch.bfloat16: "bfloat16"}[dtype])
    return write_qwen1_dir(path, qwen1_tensors_from_qwen2(model), conf, dtype)


def save_for_edgellm(spec: ModelSpec, model: torch.nn.Module, path: Path, dtype: torch.dtype = torch.float32) -> Path:
    """The directory edgellm runs for this spec: save_pretrained, or the Qwen 1 layout."""
    if spec.family == "qwen1":
        return save_qwen1_dir(model, path, dtype)
    return save_hf_dir(model, path, dtype)


def hf_config_dict(spec: ModelSpec, model: torch.nn.Module) -> dict:
    """config.json content of the directory save_for_edgellm writes (for the GGUF writer)."""
    if spec.family == "qwen1":
        cfg = model.config
        return qwen1_config(vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size,
                            num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
                            ffn=cfg.intermediate_size, kv_channels=cfg.hidden_size // cfg.num_attention_heads,
                            seq_length=cfg.max_position_embeddings, layer_norm_epsilon=cfg.rms_norm_eps,
                            rotary_emb_base=cfg.rope_parameters["rope_theta"])
    return json.loads(model.config.to_json_string())


def hf_state_dict_for_writer(spec: ModelSpec, model: torch.nn.Module) -> dict[str, np.ndarray]:
    """The Hugging Face tensors of the directory save_for_edgellm writes, float32 numpy."""
    if spec.family == "qwen1":
        return {k: v.to(torch.float32).numpy().copy() for k, v in qwen1_tensors_from_qwen2(model).items()}
    return state_dict_numpy(model)


def transformers_version() -> str:
    return f"transformers {transformers.__version__}, torch {torch.__version__}"


def gpt2_byte_to_unicode() -> dict[int, str]:
    """GPT-2's byte-level alphabet: printable Latin-1 bytes ('!'..'~', '\xa1'..'\xac', '\xae'..'\xff')
    stand for themselves, the other 68 bytes map to U+0100, U+0101, ... in byte order."""
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    out, extra = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + extra)
            extra += 1
    return out


def write_byte_level_tokenizer(path: Path, vocab_size: int) -> Path:
    """A minimal byte-level BPE tokenizer.json (+ tokenizer_config.json) of exactly vocab_size ids.

    Ids 0..255 are the 256 byte symbols (GPT-2's byte-to-unicode map), with merges joining a few
    frequent pairs up to vocab_size - 2; the last two ids are the special tokens <|endoftext|> and
    <|im_end|>. Enough for tools that need a tokenizer next to the weights (edgellm convert);
    the logits tests pass token ids directly.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    path = Path(path)
    byte_map = gpt2_byte_to_unicode()
    byte_chars = [byte_map[b] for b in range(256)]
    vocab = {ch: i for i, ch in enumerate(byte_chars)}
    merges = []
    letters = [byte_map[b] for b in b" etaoinshrdlucmfwypvbgk"]
    for a in letters:
        for b in letters:
            if len(vocab) >= vocab_size - 2:
                break
            if a + b not in vocab:
                vocab[a + b] = len(vocab)
                merges.append((a, b))
    assert len(vocab) == vocab_size - 2, "vocab too large for the merge table"
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|endoftext|>", "<|im_end|>"])
    tok.save(str(path / "tokenizer.json"))
    (path / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
        "bos_token": None, "model_max_length": 8192}, indent=2) + "\n")
    return path
