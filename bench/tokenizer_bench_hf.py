#!/usr/bin/env python3
"""Hugging Face `tokenizers` encode throughput on one thread, on the texts of bench/tokenizer_bench.cpp,
for comparison with edgellm:  .venv/bin/python bench/tokenizer_bench_hf.py

Each text is encoded as one string with add_special_tokens=False (RAYON_NUM_THREADS=1 and
TOKENIZERS_PARALLELISM=false keep it on one thread). "cold" is the first encode after loading,
"warm" the median of the following ones. Prints MB/s (1 MB = 10^6 bytes) and process CPU time.
"""
import os
import statistics
import sys
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

from tokenizers import Tokenizer  # noqa: E402

SHARED = os.environ.get("EDGELLM_SHARED", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../shared"))
DATA = os.path.join(SHARED, "data")
VOCABS = {"qwen3": "qwen3-tokenizer/tokenizer.json", "llama3": "llama3-tokenizer/tokenizer.json"}
TEXTS = {"english": "text/wiki.test.raw", "chinese": "text/xiyouji.txt"}


def cpu_time(fn):
    start = time.process_time()
    result = fn()
    return time.process_time() - start, result


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    print(f"{'benchmark':24} {'MB':>6} {'tokens':>8} {'cold MB/s':>10} {'warm MB/s':>10}")
    for vocab, vpath in VOCABS.items():
        for name, tpath in TEXTS.items():
            if not os.path.exists(os.path.join(DATA, vpath)) or not os.path.exists(os.path.join(DATA, tpath)):
                print(f"{vocab}_{name}: skipped, data absent under {DATA}")
                continue
            with open(os.path.join(DATA, tpath), encoding="utf-8") as f:
                text = f.read()
            mb = len(text.encode("utf-8")) / 1e6
            tok = Tokenizer.from_file(os.path.join(DATA, vpath))
            cold, enc = cpu_time(lambda: tok.encode(text, add_special_tokens=False))
            warm = statistics.median(cpu_time(lambda: tok.encode(text, add_special_tokens=False))[0]
                                     for _ in range(repeats))
            print(f"{vocab + '_' + name:24} {mb:6.2f} {len(enc.ids):8d} {mb / cold:10.2f} {mb / warm:10.2f}")


if __name__ == "__main__":
    main()
