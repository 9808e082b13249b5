#!/usr/bin/env python3
"""Builds the quantization quality table of docs/quantization.md.

For each model (stories260K from ../shared/data, and the trained fixtures tests/models/qwen2-tiny,
tests/models/qwen3-tiny when present) it converts the Hugging Face directory with every edgellm recipe,
quantizes the f32 GGUF with llama.cpp's own quantizer (llama-cpp-python's llama_model_quantize, when the
optional scripts/setup_llama_cpp.sh has installed it), and measures every file with the same command:

    edgellm perplexity -m FILE -f TEXT --ctx CTX --chunks N --kl-base MODEL-f16.gguf --json
    edgellm perplexity -m FILE -f TEXT --ctx CTX --chunks 1 --bench-decode 128 --json   (speed, memory)

Usage: .venv/bin/python tools/quant_report.py [--edgellm build-quant/edgellm] [--out DIR] [--ctx 256]
       [--chunks 40] [--text ../shared/data/text/wiki.test.raw]
Prints the markdown tables and the exact commands on stdout.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

# (label, convert arguments); the f16 file is the KL base. {calib} is the calibration text: the last 5% of
# the evaluation text (from a line boundary), which the evaluated windows (the start of the text) never
# reach and which the trained fixtures did not train on.
EDGELLM_RECIPES = [
    ("f16", ["-q", "f16"]),
    ("w8a8", ["-q", "w8a8"]),
    ("w8a8 --calib self", ["-q", "w8a8", "--calib", "self"]),
    ("w8a8 --rtn", ["-q", "w8a8", "--rtn"]),
    ("w4a16_g32", ["-q", "w4a16_g32"]),
    ("w4a16_g32 --calib self", ["-q", "w4a16_g32", "--calib", "self"]),
    ("w4a16_g32 --calib text", ["-q", "w4a16_g32", "--calib", "{calib}"]),
    ("w4a16_g32 --calib text --no-gptq", ["-q", "w4a16_g32", "--calib", "{calib}", "--no-gptq"]),
    ("w4a16_g32 --rtn", ["-q", "w4a16_g32", "--rtn"]),
    ("q4_0", ["-q", "q4_0"]),
    ("w4a16_g64", ["-q", "w4a16_g64"]),
    ("w4a16", ["-q", "w4a16"]),
    ("w4a16 --calib self", ["-q", "w4a16", "--calib", "self"]),
]
# llama.cpp file types (include/llama.h, enum llama_ftype).
LLAMA_CPP_TYPES = [("llama.cpp Q8_0", 7), ("llama.cpp Q4_0", 2), ("llama.cpp IQ4_NL", 25), ("llama.cpp Q4_K_M", 15)]


def run(cmd: list[str], log: list[str]) -> str:
    log.append(" ".join(str(c) for c in cmd))
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{r.stderr}")
    return r.stdout


def llama_cpp_quantize(src: Path, dst: Path, ftype: int) -> bool:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    # In a child process: llama.cpp prints a lot and a failure must not take the report down.
    code = ("import ctypes, llama_cpp, sys\n"
            "p = llama_cpp.llama_model_quantize_default_params()\n"
            f"p.ftype = {ftype}\np.nthread = 2\n"
            f"sys.exit(llama_cpp.llama_model_quantize({str(src)!r}.encode(), {str(dst)!r}.encode(), ctypes.byref(p)))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return r.returncode == 0 and dst.exists()


def models() -> list[tuple[str, Path]]:
    out = []
    s = SHARED / "data" / "stories260K-hf"
    if (s / "config.json").exists():
        out.append(("stories260K", s))
    for name in ("qwen2-tiny", "qwen3-tiny"):
        d = ROOT / "tests" / "models" / name
        if (d / "config.json").exists():
            out.append((name, d))
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--edgellm", default=str(ROOT / "build-quant" / "edgellm"))
    ap.add_argument("--out", default="/tmp/edgellm-quant-report")
    ap.add_argument("--text", default=str(SHARED / "data" / "text" / "wiki.test.raw"))
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--chunks", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--activations", default="f32",
                    help="EDGELLM_ACTIVATIONS for every run (f32: the same arithmetic for every file and every build)")
    ap.add_argument("--models", default="", help="comma-separated subset of stories260K,qwen2-tiny,qwen3-tiny")
    a = ap.parse_args()
    exe, text, out = a.edgellm, a.text, Path(a.out)
    os.environ["EDGELLM_ACTIVATIONS"] = a.activations
    log: list[str] = [f"export EDGELLM_ACTIVATIONS={a.activations}"]
    out.mkdir(parents=True, exist_ok=True)
    raw = Path(text).read_bytes()
    cut = raw.index(b"\n", int(len(raw) * 0.95)) + 1
    calib = out / "calib-tail5.txt"
    calib.write_bytes(raw[cut:])
    log.append(f"python: calib-tail5.txt = bytes [{cut}:] of {Path(text).name} (its last 5%, from a line boundary)")
    summary = []
    for model_name, hf_dir in models():
        if a.models and model_name not in a.models.split(","):
            continue
        files: list[tuple[str, Path]] = []
        for label, args in EDGELLM_RECIPES:
            stem = "".join(ch if ch.isalnum() or ch == "_" else "-" for ch in label.replace(" --", "-").replace(" ", ""))
            dst = out / f"{model_name}-{stem}.gguf"
            run([exe, "convert", hf_dir, "-o", dst, "--quiet", "-t", a.threads] +
                [x.format(text=text, calib=calib) for x in args], log)
            files.append((label, dst))
        f32 = out / f"{model_name}-f32.gguf"
        run([exe, "convert", hf_dir, "-o", f32, "-q", "f32", "--quiet"], log)
        for label, ftype in LLAMA_CPP_TYPES:
            dst = out / f"{model_name}-llamacpp-{ftype}.gguf"
            log.append(f"python: llama_cpp.llama_model_quantize({f32.name}, {dst.name}, ftype={ftype})")
            if llama_cpp_quantize(f32, dst, ftype):
                files.append((label, dst))
        base = files[0][1]
        rows = []
        for label, path in files:
            q = json.loads(run([exe, "perplexity", "-m", path, "-f", text, "--ctx", a.ctx, "--chunks", a.chunks,
                                "-t", a.threads, "--kl-base", base, "--json", "--quiet"], log))
            s = json.loads(run([exe, "perplexity", "-m", path, "-f", text, "--ctx", a.ctx, "--chunks", 1,
                                "-t", a.threads, "--bench-decode", 128, "--json", "--quiet"], log))
            s["load"] = os.getloadavg()[0]  # the machine is shared: the 1-minute load right after the run
            rows.append((label, path.stat().st_size, s, q))
        print(f"\n### {model_name} ({a.text.split('/')[-1]}, ctx {a.ctx}, {rows[0][3]['chunks']} windows, "
              f"{rows[0][3]['scored']} scored tokens, {a.threads} threads, {rows[0][2]['isa']}, "
              f"{a.activations} activations)\n")
        print("| quant | file size | peak memory | decode tokens/s (load) | PPL | KL to f16 (nats/token) | top-1 agreement |")
        print("|---|---|---|---|---|---|---|")
        for label, size, s, q in rows:
            print(f"| {label} | {size / 1024:.0f} KiB | {s['peak_rss_mb']:.1f} MB | {s['decode_tps']:.0f} ({s['load']:.1f}) | "
                  f"{q['ppl']:.3f} ± {q['ppl_stderr']:.3f} | {q['kl']:.5f} ± {q['kl_stderr']:.5f} | "
                  f"{100 * q['top1']:.2f}% |")
        kl = {label: q["kl"] for label, _, _, q in rows}
        for mine, theirs in (("w8a8", "llama.cpp Q8_0"), ("w8a8 --calib self", "llama.cpp Q8_0"),
                             ("w4a16_g32", "llama.cpp Q4_0"), ("w4a16_g32 --calib self", "llama.cpp Q4_0"),
                             ("w4a16_g32 --calib text", "llama.cpp Q4_0"), ("w4a16_g32", "w4a16_g32 --rtn"),
                             ("w4a16_g32", "llama.cpp IQ4_NL"), ("q4_0", "llama.cpp Q4_0")):
            if mine in kl and theirs in kl and kl[theirs] > 0:
                summary.append(f"{model_name}: KL({mine}) / KL({theirs}) = {kl[mine]:.5f} / {kl[theirs]:.5f} = "
                               f"{kl[mine] / kl[theirs]:.2f}x")
    print("\nRatios:")
    for line in summary:
        print("- " + line)
    print("\nCommands run:\n```")
    for line in log:
        print(line)
    print("```")
    return 0


if __name__ == "__main__":
    sys.exit(main())
