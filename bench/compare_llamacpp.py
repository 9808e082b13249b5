#!/usr/bin/env python3
"""edgellm against llama.cpp on the same GGUF file, same threads, same prompt lengths, in one run.

Runs `edgellm bench --json`, then llama.cpp through llama-cpp-python's low-level API: for each (input,
output) pair, one llama_decode of a batch holding all prompt tokens (logits for the last only) is the
prefill and time to first token (including the argmax of the logits, as edgellm bench does), then
`output` single-token llama_decode calls with greedy argmax are the decode. The first repetition of each
pair warms up and is not counted; medians are reported. Both engines read random token ids.

Prints one line per figure with both values and the ratio edgellm / llama.cpp (for time to first token
a ratio below 1 means edgellm is faster; for tokens/s above 1), and last
`prefill_ratio=R decode_ratio=R` for the largest input length (and the first output length).
"""
import argparse
import ctypes
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time


def parse_list(s):
    return [int(x) for x in s.split(",") if x]


def run_edgellm(args):
    cmd = [args.edgellm, "bench", "-m", args.model, "-p", args.prompts, "-n", args.outputs, "-t", str(args.threads),
           "-r", str(args.reps), "--json"]
    print("# " + " ".join(cmd), flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"compare_llamacpp: edgellm bench failed ({r.returncode}):\n{r.stderr}")
    return json.loads(r.stdout)


def run_llamacpp(args, llama_cpp):
    import numpy as np

    prompts, outputs = parse_list(args.prompts), parse_list(args.outputs)
    n_ctx = max(prompts) + max(outputs) + 8

    @llama_cpp.llama_log_callback
    def quiet(level, text, user_data):  # llama.cpp logs every load step on stderr otherwise
        pass

    llama_cpp.llama_log_set(quiet, ctypes.c_void_p(0))
    llama_cpp.llama_backend_init()
    t0 = time.perf_counter()
    mparams = llama_cpp.llama_model_default_params()
    model = llama_cpp.llama_model_load_from_file(args.model.encode(), mparams)
    if not model:
        sys.exit(f"compare_llamacpp: llama.cpp cannot load {args.model}")
    cparams = llama_cpp.llama_context_default_params()
    cparams.n_ctx = n_ctx
    cparams.n_batch = max(prompts)
    cparams.n_ubatch = max(prompts)
    cparams.n_threads = args.threads
    cparams.n_threads_batch = args.threads
    ctx = llama_cpp.llama_init_from_model(model, cparams)
    if not ctx:
        sys.exit("compare_llamacpp: llama.cpp cannot create a context")
    load_s = time.perf_counter() - t0
    n_vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(model))
    mem = llama_cpp.llama_get_memory(ctx)
    batch = llama_cpp.llama_batch_init(max(prompts), 0, 1)
    rng = random.Random(12345)

    def argmax_ith(i):
        ptr = llama_cpp.llama_get_logits_ith(ctx, i)
        return int(np.argmax(np.ctypeslib.as_array(ptr, shape=(n_vocab,))))

    def fill(tokens, pos0):
        batch.n_tokens = len(tokens)
        for i, t in enumerate(tokens):
            batch.token[i] = t
            batch.pos[i] = pos0 + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = 1 if i == len(tokens) - 1 else 0

    results = []
    for p in prompts:
        for n in outputs:
            ttft, prefill, decode = [], [], []
            for rep in range(args.reps + 1):
                llama_cpp.llama_memory_clear(mem, True)
                tokens = [rng.randrange(n_vocab) for _ in range(p)]
                fill(tokens, 0)
                t = time.perf_counter()
                if llama_cpp.llama_decode(ctx, batch) != 0:
                    sys.exit("compare_llamacpp: llama_decode failed (prefill)")
                nxt = argmax_ith(p - 1)
                prefill_s = time.perf_counter() - t
                t = time.perf_counter()
                for i in range(n):
                    fill([nxt], p + i)
                    if llama_cpp.llama_decode(ctx, batch) != 0:
                        sys.exit("compare_llamacpp: llama_decode failed (decode)")
                    nxt = argmax_ith(0)
                decode_s = time.perf_counter() - t
                if rep == 0:
                    continue
                ttft.append(prefill_s * 1000)
                prefill.append(p / prefill_s)
                decode.append(n / decode_s)
            print(f"# llama.cpp p={p} n={n} done", file=sys.stderr, flush=True)
            results.append({"input": p, "output": n, "ttft_ms": statistics.median(ttft),
                            "prefill_tps": statistics.median(prefill), "decode_tps": statistics.median(decode)})
    llama_cpp.llama_batch_free(batch)
    llama_cpp.llama_free(ctx)
    llama_cpp.llama_model_free(model)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"load_s": load_s, "peak_rss_mib": rss_mib, "results": results,
            "system_info": llama_cpp.llama_print_system_info().decode(errors="replace").strip()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("-t", "--threads", type=int, default=os.cpu_count())
    ap.add_argument("-p", "--prompts", default="32,64,128")
    ap.add_argument("-n", "--outputs", default="128")
    ap.add_argument("-r", "--reps", type=int, default=3)
    ap.add_argument("--edgellm", default=os.environ.get("EDGELLM_BIN", "build/edgellm"))
    args = ap.parse_args()
    try:
        import llama_cpp  # noqa: F401
    except ImportError as e:
        sys.exit(f"compare_llamacpp: llama_cpp is not importable ({e}).\n"
                 "Install llama-cpp-python 0.3.36 into .venv with scripts/setup_llama_cpp.sh (opt-in, long build).")
    try:
        import numpy  # noqa: F401
    except ImportError:
        sys.exit("compare_llamacpp: numpy is needed (scripts/setup.sh installs it into .venv)")

    ours = run_edgellm(args)
    print("# edgellm done; running llama.cpp", file=sys.stderr, flush=True)
    theirs = run_llamacpp(args, llama_cpp)
    print(f"# model {args.model}, {args.threads} threads, {args.reps} repetitions after a warm-up, medians")
    print(f"# llama.cpp {llama_cpp.__version__}: {theirs['system_info']}")
    print("# llama.cpp's load_s and peak_rss_mib include its Python process (interpreter, numpy)")

    def line(name, a, b):
        ratio = a / b if b else float("nan")
        print(f"{name:<28} edgellm={a:10.2f} llama.cpp={b:10.2f} ratio={ratio:.3f}")
        return ratio

    line("load_s", ours["load_s"], theirs["load_s"])
    line("peak_rss_mib", ours["peak_rss_mib"], theirs["peak_rss_mib"])
    by_pair = {(r["input"], r["output"]): r for r in theirs["results"]}
    last = None
    for r in ours["results"]:
        o = by_pair[(r["input"], r["output"])]
        tag = f"p{r['input']}_n{r['output']}"
        line(f"{tag} ttft_ms", r["ttft_ms"], o["ttft_ms"])
        pr = line(f"{tag} prefill_tok_s", r["prefill_tps"], o["prefill_tps"])
        dr = line(f"{tag} decode_tok_s", r["decode_tps"], o["decode_tps"])
        if last is None or r["input"] > last[0]:
            last = (r["input"], pr, dr)
    print(f"prefill_ratio={last[1]:.3f} decode_ratio={last[2]:.3f}")


if __name__ == "__main__":
    main()
