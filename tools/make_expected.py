#!/usr/bin/env python3
"""Write expected.json (golden outputs from Hugging Face transformers) for a tiny model fixture.

For each of three fixed prompts (English text, Chinese text, a ChatML conversation rendered with
the directory's own chat template) it records, from the model and tokenizer reloaded from the
saved directory in float32:
  - the prompt text and prompt token ids (no BOS: Qwen tokenizers add none),
  - the top-5 logits (ids and float32 values) at the last prompt position, from one forward pass,
  - 32 greedy new tokens from `generate` (no sampling, no repetition penalty, KV cache on, EOS
    does not stop generation so that exactly 32 ids are recorded), their decoded text, the index
    of the first token that the model's generation_config would stop at, and the smallest
    top-1/top-2 logit margin over those 32 steps (how close greedy decoding came to a tie).
The greedy ids are cross-checked against argmax of a full forward pass (no cache).

Usage: .venv/bin/python tools/make_expected.py tests/models/qwen2-tiny [tests/models/qwen3-tiny ...]
"""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import argparse
import json
import sys
from pathlib import Path

N_NEW = 32
TOP_K = 5

PROMPTS = [
    ("english", "text", "The film was released in the United States on"),
    ("chinese", "text", "却说那孙悟空见师父被妖精拿去，"),
    ("chatml", "chat", [{"role": "user", "content": "Repeat this sentence: The king went to the city ."}]),
]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dirs", nargs="+", help="directories written by tools/train_tiny.py")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)

    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)

    for d in a.model_dirs:
        d = Path(d)
        tok = AutoTokenizer.from_pretrained(d)
        model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32)
        model.eval()
        stop_ids = model.generation_config.eos_token_id
        stop_ids = set(stop_ids if isinstance(stop_ids, list) else [stop_ids])
        pad_id = model.generation_config.pad_token_id
        # generate() fills every unset field of the config it is given from model.generation_config
        # (sampling settings, repetition_penalty, eos_token_id); replace that with a plain greedy one.
        model.generation_config = GenerationConfig(pad_token_id=pad_id)
        gen_cfg = GenerationConfig(max_new_tokens=N_NEW, min_new_tokens=0, do_sample=False, num_beams=1,
                                   repetition_penalty=1.0, eos_token_id=None, pad_token_id=pad_id,
                                   bos_token_id=None, output_logits=True, return_dict_in_generate=True)
        cases = []
        for name, kind, content in PROMPTS:
            if kind == "chat":
                text = tok.apply_chat_template(content, add_generation_prompt=True, tokenize=False)
            else:
                text = content
            ids = tok(text, add_special_tokens=True)["input_ids"]
            x = torch.tensor([ids])
            with torch.no_grad():
                last = model(input_ids=x).logits[0, -1].float()
                top = torch.topk(last, TOP_K)
                out = model.generate(input_ids=x, attention_mask=torch.ones_like(x), generation_config=gen_cfg)
            new = out.sequences[0, len(ids):].tolist()
            assert len(new) == N_NEW, (name, len(new))
            margins = []
            for step_logits in out.logits:
                t2 = torch.topk(step_logits[0].float(), 2).values
                margins.append(float(t2[0] - t2[1]))
            # Cross-check: greedy ids equal argmax of a full forward pass without a KV cache.
            with torch.no_grad():
                full = model(input_ids=out.sequences, use_cache=False).logits[0].float()
            re_ids = full[len(ids) - 1:-1].argmax(-1).tolist()
            if re_ids != new:
                sys.exit(f"{d.name}/{name}: no-cache argmax {re_ids} != generate {new}")
            stop = next((i for i, t in enumerate(new) if t in stop_ids), None)
            cases.append({
                "name": name,
                "prompt": text,
                "chat_messages": content if kind == "chat" else None,
                "prompt_ids": ids,
                "last_prompt_top5": {"ids": top.indices.tolist(), "logits": [float(v) for v in top.values]},
                "greedy_ids": new,
                "greedy_text": tok.decode(new, skip_special_tokens=False),
                "first_stop_index": stop,
                "min_top1_top2_margin": min(margins),
            })
            print(f"{d.name}/{name}: {len(ids)} prompt ids, top1 {top.indices[0].item()}, "
                  f"min margin {min(margins):.4f}, text {tok.decode(new, skip_special_tokens=False)!r}")
        doc = {
            "generated_by": "tools/make_expected.py",
            "reference": f"transformers {transformers.__version__} {type(model).__name__}, torch {torch.__version__}",
            "dtype": "float32",
            "attn_implementation": model.config._attn_implementation,
            "greedy": {"max_new_tokens": N_NEW, "do_sample": False, "repetition_penalty": 1.0,
                       "stop_on_eos": False, "kv_cache": True},
            "stop_token_ids": sorted(stop_ids),
            "notes": "prompt_ids come from the directory's tokenizer (no BOS added). first_stop_index: index in "
                     "greedy_ids of the first token in generation_config.eos_token_id (null if none); generation "
                     "with EOS stopping would end there.",
            "cases": cases,
        }
        (d / "expected.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {d / 'expected.json'}")


if __name__ == "__main__":
    main()
