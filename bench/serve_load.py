#!/usr/bin/env python3
"""Concurrent streaming chats against an OpenAI-compatible server: aggregate tokens/s, time to first token
(TTFT) and inter-token latency (ITL) p50/p99, at each concurrency. The same script measures edgellm serve and
llama.cpp's llama-server on the same GGUF for side-by-side ratios.

    # a server that is already running
    bench/serve_load.py --url http://127.0.0.1:8080/v1 --model qwen -c 1,4,8,16
    # start edgellm serve (and/or llama-server, built by scripts/build_llama_server.sh) on MODEL.gguf
    bench/serve_load.py --gguf MODEL.gguf --edgellm build/edgellm --llama-server build-llamacpp/bin/llama-server \\
        -c 1,4,8,16 -t 2 --words 100 --max-tokens 128

Each request is a chat whose user message is random words (the same prompts for every server, from a fixed
seed), streamed with the official `openai` client (asyncio), generating exactly --max-tokens tokens
(`ignore_eos`, understood by both servers). Per concurrency N: N requests run together, --rounds times;
aggregate tokens/s = all generated tokens / wall time of the round; TTFT from sending to the first content;
ITL = the gaps between content chunks. Bounded in time (--time-limit per round). Prints a table and, with
two servers, the ratios edgellm / llama-server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import socket
import statistics
import subprocess
import time

WORDS = ("river mountain kitchen window garden morning quiet lamp sensor bright evening door table music "
         "light cloud winter summer coffee paper market train station bridge forest city island").split()


def percentile(values, q):
    if not values:
        return float("nan")
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(q * (len(v) - 1)))))
    return v[k]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def started(cmd, port, name, log_path):
    """Runs a server command, waits until it answers /health, stops it at the end."""
    import urllib.request
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 600
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited ({proc.returncode}); see {log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not become ready; see {log_path}")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


async def one_chat(client, model, prompt, max_tokens):
    t0 = time.perf_counter()
    first = None
    times = []
    n_tokens = n_prompt = 0
    stream = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens, temperature=0,
        stream=True, stream_options={"include_usage": True}, extra_body={"ignore_eos": True})
    async for chunk in stream:
        now = time.perf_counter()
        if chunk.choices and chunk.choices[0].delta.content:
            if first is None:
                first = now
            times.append(now)
        if chunk.usage is not None:
            n_tokens = chunk.usage.completion_tokens
            n_prompt = chunk.usage.prompt_tokens
    itl = [b - a for a, b in zip(times, times[1:])]
    return (first - t0) if first else float("nan"), itl, n_tokens, n_prompt


async def measure(url, model, concurrency, prompts, max_tokens, rounds, time_limit):
    from openai import AsyncOpenAI
    client = AsyncOpenAI(base_url=url, api_key="unused", max_retries=0, timeout=time_limit)
    # Warm-up: one short request (the first touches the weights' pages).
    await one_chat(client, model, prompts[0], 4)
    rows = []
    for r in range(rounds):
        batch = [prompts[(r * concurrency + i) % len(prompts)] for i in range(concurrency)]
        t0 = time.perf_counter()
        results = await asyncio.wait_for(asyncio.gather(*(one_chat(client, model, p, max_tokens) for p in batch)),
                                         timeout=time_limit)
        wall = time.perf_counter() - t0
        rows.append((wall, results))
    await client.close()
    ttft = [res[0] for _, results in rows for res in results]
    itl = [x for _, results in rows for res in results for x in res[1]]
    tps = [sum(res[2] for res in results) / wall for wall, results in rows]
    return {"tokens_s": statistics.median(tps), "ttft_p50": percentile(ttft, 0.5), "ttft_p99": percentile(ttft, 0.99),
            "itl_p50": percentile(itl, 0.5), "itl_p99": percentile(itl, 0.99),
            "tokens": sum(res[2] for _, results in rows for res in results),
            "prompt_tokens": statistics.median(res[3] for _, results in rows for res in results)}


def make_prompts(n, words, seed=7):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(words)) for _ in range(n)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="OpenAI base URL of a running server (…/v1)")
    ap.add_argument("--model", default="", help="model name for --url")
    ap.add_argument("--gguf", help="start the servers below on this file")
    ap.add_argument("--edgellm", help="edgellm binary: start `edgellm serve`")
    ap.add_argument("--llama-server", help="llama-server binary: start it with --parallel and continuous batching")
    ap.add_argument("-c", "--concurrency", default="1,4,8,16")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--words", type=int, default=100,
                    help="words of the user message (the prompt tokens each server counted are printed)")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--time-limit", type=float, default=600, help="seconds per round at most")
    ap.add_argument("--log-dir", default="/tmp")
    a = ap.parse_args()
    levels = [int(x) for x in a.concurrency.split(",")]
    n_max = max(levels)
    prompts = make_prompts(n_max * a.rounds, a.words)
    ctx = 2048  # per request; room for prompts of any tokenizer's length

    servers = []  # (name, context manager factory)
    if a.url:
        servers.append(("server", lambda: contextlib.nullcontext(a.url), a.model))
    if a.gguf and a.edgellm:
        def edge():
            port = free_port()
            return started([a.edgellm, "serve", "-m", a.gguf, "--alias", "m", "--port", str(port), "--parallel",
                            str(n_max), "--ctx", str(ctx), "-t", str(a.threads)], port, "edgellm serve",
                           os.path.join(a.log_dir, "serve_load_edgellm.log"))
        servers.append(("edgellm", edge, "m"))
    if a.gguf and a.llama_server:
        def llama():
            port = free_port()
            return started([a.llama_server, "-m", a.gguf, "--port", str(port), "--host", "127.0.0.1", "-np",
                            str(n_max), "-c", str(ctx * n_max), "-t", str(a.threads), "-tb", str(a.threads),
                            "--cont-batching", "--no-webui"], port, "llama-server",
                           os.path.join(a.log_dir, "serve_load_llama_server.log"))
        servers.append(("llama-server", llama, "m"))
    if not servers:
        ap.error("give --url, or --gguf with --edgellm and/or --llama-server")

    results = {}
    for name, factory, model in servers:
        with factory() as url:
            for n in levels:
                r = asyncio.run(measure(url, model, n, prompts, a.max_tokens, a.rounds, a.time_limit))
                results[(name, n)] = r
                print(f"{name:13s} c={n:<3d} {r['tokens_s']:8.1f} tok/s  TTFT p50 {r['ttft_p50']*1000:8.1f} ms "
                      f"p99 {r['ttft_p99']*1000:8.1f} ms  ITL p50 {r['itl_p50']*1000:7.2f} ms p99 "
                      f"{r['itl_p99']*1000:7.2f} ms  ({r['tokens']} tokens; prompts of {r['prompt_tokens']:.0f})",
                      flush=True)
    names = [s[0] for s in servers]
    if "edgellm" in names and "llama-server" in names:
        print("\nratios edgellm / llama-server (tokens/s higher is better; TTFT and ITL lower is better):")
        for n in levels:
            e, l = results[("edgellm", n)], results[("llama-server", n)]
            print(f"c={n:<3d} tokens/s {e['tokens_s'] / l['tokens_s']:.2f}x  TTFT p99 "
                  f"{e['ttft_p99'] / l['ttft_p99']:.2f}x  ITL p50 {e['itl_p50'] / l['itl_p50']:.2f}x")


if __name__ == "__main__":
    main()
