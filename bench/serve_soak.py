#!/usr/bin/env python3
"""Soak: many clients against `edgellm serve` for a while, then the verdict: no 5xx but the intended 503s
of a full queue, the server still alive and answering, and its resident memory after the run within a
bound of what it was after warm-up.

    bench/serve_soak.py --edgellm build/edgellm --gguf MODEL.gguf --clients 64 --seconds 60

Clients loop on a mix of requests (OpenAI chat streamed and not, completions, Ollama chat, model lists,
/metrics scrapes, and streams they abandon half way), each with random lengths. The server runs with
--parallel 8 and a queue of 16, so that 64 clients also exercise the 503 answers of a full queue.
Exit status 0 when every check passes.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_bytes(base: str) -> float:
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("process_resident_memory_bytes "):
                return float(line.split()[1])
    return float("nan")


async def client_loop(idx, base, deadline, counts, rng):
    import httpx
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        while time.monotonic() < deadline:
            kind = rng.choice(["chat", "chat_stream", "completion", "ollama", "models", "metrics", "abandon"])
            words = " ".join(rng.choice(["alpha", "beta", "gamma", "delta", "lamp", "door"]) for _ in range(rng.randint(1, 60)))
            n = rng.randint(1, 48)
            try:
                if kind == "chat":
                    r = await http.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": words}],
                                                                     "max_tokens": n})
                elif kind == "chat_stream":
                    async with http.stream("POST", "/v1/chat/completions", json={
                            "messages": [{"role": "user", "content": words}], "max_tokens": n, "stream": True}) as r:
                        async for _ in r.aiter_lines():
                            pass
                elif kind == "completion":
                    r = await http.post("/v1/completions", json={"prompt": words, "max_tokens": n})
                elif kind == "ollama":
                    r = await http.post("/api/chat", json={"model": "m", "stream": False, "options": {"num_predict": n},
                                                           "messages": [{"role": "user", "content": words}]})
                elif kind == "models":
                    r = await http.get("/v1/models")
                elif kind == "metrics":
                    r = await http.get("/metrics")
                else:  # a client that leaves half way through a stream
                    async with http.stream("POST", "/v1/chat/completions", json={
                            "messages": [{"role": "user", "content": words}], "max_tokens": 200, "stream": True}) as r:
                        async for line in r.aiter_lines():
                            if line.startswith("data:"):
                                break
                counts[r.status_code] += 1
            except httpx.HTTPError as e:
                counts["client error: " + type(e).__name__ + " in " + kind] += 1


async def soak(base, clients, seconds, seed):
    counts = collections.Counter()
    deadline = time.monotonic() + seconds
    rngs = [random.Random(seed + i) for i in range(clients)]
    await asyncio.gather(*(client_loop(i, base, deadline, counts, rngs[i]) for i in range(clients)))
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edgellm", required=True)
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--warmup", type=float, default=15, help="seconds of load before the RSS baseline")
    ap.add_argument("--rss-tolerance", type=float, default=0.05)
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--log", default="/tmp/serve_soak.log")
    a = ap.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(a.log, "w")
    proc = subprocess.Popen([a.edgellm, "serve", "-m", a.gguf, "--alias", "m", "--port", str(port), "--parallel", "8",
                             "--queue", "16", "--ctx", "512", "-t", str(a.threads)], stdout=log, stderr=subprocess.STDOUT)
    ok = True
    try:
        while True:
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None:
                    print("the server exited at start; see", a.log)
                    return 1
                time.sleep(0.2)
        warm = asyncio.run(soak(base, a.clients, a.warmup, 1))
        rss_warm = rss_bytes(base)
        counts = asyncio.run(soak(base, a.clients, a.seconds, 1000))
        time.sleep(1)
        rss_end = rss_bytes(base)
        counts.update(warm)
        print(f"{a.clients} clients, {a.warmup:.0f} s warm-up + {a.seconds:.0f} s: responses {dict(counts)}")
        print(f"RSS after warm-up {rss_warm / 2**20:.1f} MiB, after the run {rss_end / 2**20:.1f} MiB "
              f"({(rss_end / rss_warm - 1) * 100:+.1f}%)")
        bad = {k: v for k, v in counts.items() if (isinstance(k, int) and k >= 500 and k != 503) or isinstance(k, str)}
        if bad:
            print("FAIL: unexpected answers", bad)
            ok = False
        if proc.poll() is not None:
            print("FAIL: the server died")
            ok = False
        if not rss_end <= rss_warm * (1 + a.rss_tolerance):
            print(f"FAIL: RSS grew by more than {a.rss_tolerance * 100:.0f}%")
            ok = False
        with urllib.request.urlopen(base + "/health", timeout=10) as r:
            ok = ok and r.status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        log.close()
        if code != 0:
            print(f"FAIL: exit status {code} after SIGTERM")
            ok = False
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
