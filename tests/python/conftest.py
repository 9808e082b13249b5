"""Shared fixtures for the Python reference tests of edgellm.

Environment (set by tests/CMakeLists.txt when ctest runs these files):
  EDGELLM_BIN         path of the edgellm binary (default: <source>/build-ref/edgellm, then <source>/build/edgellm)
  EDGELLM_SHARED      the reference data (tests/data/reference, unpacked into BUILD/reference by CMake)
  EDGELLM_SOURCE_DIR  the project root
  EDGELLM_TEST_DATA   tests/data

Error measure used by every logits comparison in this directory (stated once, used everywhere):
  relative error of a row = max_i |a_i - b_i| / max_i |b_i|
where b is the reference row (transformers or an independent re-implementation) and a is edgellm's.
A test reports the largest relative error over the prefill rows and over the decode rows separately.

Measured errors are printed as they are taken (visible with `pytest -s`) and collected into a
summary printed at the end of the session (visible without -s), one line per model and weight type.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

SOURCE_DIR = Path(os.environ.get("EDGELLM_SOURCE_DIR", HERE.parents[1]))
# The reference data (tests/data/reference), unpacked by CMake into the build tree (ctest sets EDGELLM_SHARED).
SHARED_DIR = Path(os.environ.get("EDGELLM_SHARED") or
                  Path(os.environ.get("EDGELLM_BUILD_DIR", SOURCE_DIR / "build")) / "reference")

# Keep torch from fighting the edgellm processes (and other engineers) for the two cores.
os.environ.setdefault("OMP_NUM_THREADS", "2")


def edgellm_bin() -> Path:
    env = os.environ.get("EDGELLM_BIN")
    if env:
        return Path(env)
    for cand in (SOURCE_DIR / "build-ref" / "edgellm", SOURCE_DIR / "build" / "edgellm"):
        if cand.exists():
            return cand
    return SOURCE_DIR / "build-ref" / "edgellm"


@pytest.fixture(scope="session")
def bin_path() -> Path:
    p = edgellm_bin()
    if not p.exists():
        pytest.fail(f"edgellm binary not found at {p}; build it or set EDGELLM_BIN", pytrace=False)
    return p


# ---------------------------------------------------------------------------------------------
# Running the CLI
# ---------------------------------------------------------------------------------------------

def run_cli(args, timeout: float = 300, activations: str = "f32") -> subprocess.CompletedProcess:
    """Runs `edgellm ARGS...` and returns the completed process (text stdout/stderr).

    `activations` sets EDGELLM_ACTIVATIONS. The oracle tests compare the model's arithmetic against
    transformers with bounds derived for f32 activations, so they run edgellm's f32-activation path;
    edgellm's default for quantized weights (int8 activations, as llama.cpp) has its own tests with
    their own bound (test_gguf_interop.py: test_reference_gguf_int8_activations).
    """
    cmd = [str(edgellm_bin())] + [str(a) for a in args]
    env = dict(os.environ, EDGELLM_ACTIVATIONS=activations)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


@dataclass
class GenerateResult:
    ids: list           # the greedy ids edgellm printed (n of them)
    logits: np.ndarray  # [n_prompt + n - 1, n_vocab] float32, the --dump-logits rows
    n_prompt: int
    stdout: str
    stderr: str

    @property
    def prefill(self) -> np.ndarray:
        return self.logits[: self.n_prompt]

    @property
    def decode(self) -> np.ndarray:
        return self.logits[self.n_prompt:]


def run_generate(model, tokens, n: int, tmp_path: Path, kv_type: str = "f32", threads: int = 2,
                 batch: int | None = None, ctx: int | None = None, extra=(),
                 activations: str = "f32") -> GenerateResult:
    """`edgellm generate` with --dump-logits; checks exit status and the dump's size."""
    tokens = [int(t) for t in tokens]
    dump = Path(tmp_path) / f"logits-{os.getpid()}-{abs(hash((str(model), tuple(tokens), n, kv_type, batch, threads)))}.f32"
    args = ["generate", "-m", model, "--tokens", ",".join(map(str, tokens)), "-n", n, "--threads", threads,
            "--kv-type", kv_type, "--dump-logits", dump]
    if batch is not None:
        args += ["--batch", batch]
    if ctx is not None:
        args += ["--ctx", ctx]
    args += list(extra)
    proc = run_cli(args, activations=activations)
    assert proc.returncode == 0, (f"edgellm generate failed (exit {proc.returncode}) on {model}:\n"
                                  f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.strip()]
    assert lines, f"edgellm generate printed no ids; stderr: {proc.stderr}"
    ids = [int(x) for x in lines[-1].split()]
    assert len(ids) == n, f"expected {n} ids, got {ids}"
    raw = np.fromfile(dump, dtype="<f4")
    dump.unlink()
    rows = len(tokens) + n - 1
    assert raw.size % rows == 0 and raw.size > 0, f"dump of {raw.size} floats is not {rows} rows"
    logits = raw.reshape(rows, raw.size // rows)
    return GenerateResult(ids=ids, logits=logits, n_prompt=len(tokens), stdout=proc.stdout, stderr=proc.stderr)


# ---------------------------------------------------------------------------------------------
# Comparing logits
# ---------------------------------------------------------------------------------------------

def rel_err_rows(a: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Per row: max|a - ref| / max|ref| (ref is the reference). Returns one value per row."""
    a = np.asarray(a, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert a.shape == ref.shape, f"shape {a.shape} vs reference {ref.shape}"
    assert np.all(np.isfinite(a)), "edgellm logits contain NaN or Inf"
    num = np.max(np.abs(a - ref), axis=-1)
    den = np.max(np.abs(ref), axis=-1)
    return num / den


@dataclass
class Measured:
    prefill: float
    decode: float

    @property
    def worst(self) -> float:
        return max(self.prefill, self.decode)


def measure(result: GenerateResult, ref_logits: np.ndarray) -> Measured:
    """Relative errors of edgellm's dump against reference rows of the same layout."""
    err = rel_err_rows(result.logits, ref_logits)
    n_p = result.n_prompt
    return Measured(prefill=float(err[:n_p].max()), decode=float(err[n_p:].max()) if err.size > n_p else 0.0)


_SUMMARY: list[str] = []


def report(label: str, m: Measured, bound: float, extra: str = "") -> None:
    """Prints and records one measured line: '<label>: prefill X decode Y (bound B)'."""
    line = f"{label:<44} prefill {m.prefill:.2e}  decode {m.decode:.2e}  (bound {bound:.0e}){extra}"
    print("[edgellm-logits] " + line, flush=True)
    _SUMMARY.append(line)


def assert_within(label: str, m: Measured, bound: float, extra: str = "") -> None:
    report(label, m, bound, extra)
    assert m.prefill <= bound and m.decode <= bound, (
        f"{label}: max relative logits error prefill {m.prefill:.3e}, decode {m.decode:.3e} exceeds {bound:.0e}")


def assert_greedy_consistent(ids, ref_logits: np.ndarray, n_prompt: int, slack: float, label: str) -> None:
    """edgellm's greedy ids against reference rows computed on edgellm's own token sequence.

    Where edgellm's choice differs from the reference argmax, the reference must consider the two
    (nearly) tied: top logit - logit of edgellm's choice <= slack * max|row|. Used where the weights
    differ from the reference's (f16 rounding, f16 KV cache), so an exact match cannot be demanded.
    """
    for i, tok in enumerate(ids):
        row = np.asarray(ref_logits[n_prompt - 1 + i], dtype=np.float64)
        best = int(np.argmax(row))
        if tok != best:
            gap = row[best] - row[tok]
            assert gap <= slack * np.max(np.abs(row)), (
                f"{label}: step {i}: edgellm picked {tok}, reference {best} with margin {gap:.4g}")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _SUMMARY:
        terminalreporter.write_sep("-", "edgellm logits errors (max relative error per row: max|a-b|/max|b|)")
        for line in _SUMMARY:
            terminalreporter.write_line(line)


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory, request) -> Path:
    return tmp_path_factory.mktemp(request.module.__name__.split(".")[-1])
