"""Bit-exactness of edgellm's reference (de)quantization against the `gguf` package's numpy port of
ggml's quantizers (gguf.quants, from the llama.cpp project).

edgellm is driven through its hidden developer command
    edgellm quant-row --type T --in IN --out OUT [--dequant]
which runs kernels/quantize.h on raw files. Every comparison is on bytes (quantize) or on f32 bit
patterns (dequantize): no tolerance.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
from gguf import GGMLQuantizationType as T  # noqa: E402
from gguf import quants  # noqa: E402

SEED = 20240601
ROWS, COLS = 16, 1024  # 16384 values: 512 blocks of 32, 64 super-blocks of 256

QUANTIZE_TYPES = [T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.F16, T.BF16]
DEQUANTIZE_TYPES = [T.F16, T.BF16, T.Q4_0, T.IQ4_NL, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0,
                    T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K]

# Byte offsets of the fp16 scales inside each block (ggml/src/ggml-common.h), overwritten with sane
# values in random blocks so that no scale is NaN or infinite.
FP16_SCALE_OFFSETS = {
    T.Q4_0: [0], T.IQ4_NL: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}


def edgellm_bin() -> Path:
    env = os.environ.get("EDGELLM_BIN")
    if env:
        return Path(env)
    root = Path(__file__).resolve().parents[2]
    for cand in (root / "build" / "edgellm", root / "build-kern" / "edgellm"):
        if cand.exists():
            return cand
    pytest.fail("edgellm binary not found; set EDGELLM_BIN", pytrace=False)


def run_quant_row(tmp_path: Path, qtype: T, data: bytes, dequant: bool) -> bytes:
    src, dst = tmp_path / "in.bin", tmp_path / "out.bin"
    src.write_bytes(data)
    cmd = [str(edgellm_bin()), "quant-row", "--type", qtype.name.lower(), "--in", str(src), "--out", str(dst)]
    if dequant:
        cmd.append("--dequant")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed: {proc.stderr}"
    return dst.read_bytes()


def datasets() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(SEED)
    normal = rng.normal(0.0, 0.02, size=(ROWS, COLS)).astype(np.float32)

    outliers = rng.standard_t(2.0, size=(ROWS, COLS)).astype(np.float32)
    outliers *= np.where(rng.random((ROWS, COLS)) < 0.01, 100.0, 1.0).astype(np.float32)

    # Rounding ties and edge cases, one per 32-block: exact half-integers at scale 1, an all-zero block,
    # constant blocks, blocks with a single non-zero, tiny values (fp16-subnormal scales), huge values
    # (scales that overflow fp16).
    special = rng.normal(0.0, 1.0, size=(ROWS, COLS)).astype(np.float32)
    blocks = special.reshape(-1, 32)
    blocks[0] = np.arange(32, dtype=np.float32) - 16.0
    blocks[1] = (np.arange(32, dtype=np.float32) - 16.0) + 0.5
    blocks[2] = 0.0
    blocks[3] = 3.0
    blocks[4] = -7.25
    blocks[5] = 0.0
    blocks[5][9] = -1.0
    blocks[6] = rng.normal(0.0, 1e-6, size=32)
    blocks[7] = rng.normal(0.0, 1e-9, size=32)
    blocks[8] = rng.normal(0.0, 1e6, size=32)
    blocks[9] = np.linspace(-127.0, 127.0, 32, dtype=np.float32)
    blocks[10] = np.round(rng.normal(0.0, 40.0, size=32)) + 0.5
    blocks[10][0] = 127.0
    return {"normal": normal, "outliers": outliers, "special": special}


@pytest.mark.parametrize("name", ["normal", "outliers", "special"])
@pytest.mark.parametrize("qtype", QUANTIZE_TYPES, ids=lambda t: t.name)
def test_quantize_is_bit_exact(tmp_path: Path, qtype: T, name: str) -> None:
    data = datasets()[name]
    with np.errstate(over="ignore"):  # the "huge" block overflows fp16 scales on purpose
        expected = np.ascontiguousarray(quants.quantize(data, qtype)).tobytes()
    got = run_quant_row(tmp_path, qtype, data.tobytes(), dequant=False)
    assert len(got) == len(expected)
    if got != expected:
        block_bytes = quants.GGML_QUANT_SIZES[qtype][1]
        first = next(i for i in range(len(got)) if got[i] != expected[i])
        blk = first // block_bytes
        pytest.fail(f"{qtype.name}/{name} (seed {SEED}): first difference at byte {first} (block {blk}): "
                    f"got {got[blk * block_bytes:(blk + 1) * block_bytes].hex()} "
                    f"expected {expected[blk * block_bytes:(blk + 1) * block_bytes].hex()}")


def random_blocks(qtype: T, rng: np.random.Generator) -> np.ndarray:
    """Random bytes for ROWS x COLS values of qtype, with finite fp16 scales."""
    block_size, block_bytes = quants.GGML_QUANT_SIZES[qtype]
    n_blocks = ROWS * COLS // block_size
    raw = rng.integers(0, 256, size=(n_blocks, block_bytes), dtype=np.uint8)
    if qtype == T.F16:
        h = raw.reshape(-1).view(np.uint16)
        is_nan = ((h & 0x7C00) == 0x7C00) & ((h & 0x03FF) != 0)
        h[is_nan] = 0x3C00  # numpy's NaN conversion may quiet signalling NaNs; compare finite values
        return h.view(np.uint8).reshape(ROWS, -1)
    for offset in FP16_SCALE_OFFSETS.get(qtype, []):
        scales = (rng.uniform(-1.0, 1.0, size=n_blocks) * 10.0 ** rng.integers(-8, 3, size=n_blocks))
        raw[:, offset:offset + 2] = scales.astype(np.float16).view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(ROWS, -1)


@pytest.mark.parametrize("qtype", DEQUANTIZE_TYPES, ids=lambda t: t.name)
def test_dequantize_is_bit_exact(tmp_path: Path, qtype: T) -> None:
    rng = np.random.default_rng(SEED + int(qtype))
    candidates = [random_blocks(qtype, rng)]
    if qtype in QUANTIZE_TYPES:  # also blocks the quantizer actually produces
        candidates.append(np.ascontiguousarray(quants.quantize(datasets()["outliers"], qtype)).view(np.uint8))
    for blocks in candidates:
        if qtype == T.F16:
            expected = blocks.view(np.float16).astype(np.float32)
        else:
            expected = quants.dequantize(blocks, qtype)
        got = np.frombuffer(run_quant_row(tmp_path, qtype, blocks.tobytes(), dequant=True), dtype=np.float32)
        expected_bits = np.ascontiguousarray(expected, dtype=np.float32).reshape(-1).view(np.uint32)
        got_bits = got.view(np.uint32)
        assert got_bits.shape == expected_bits.shape
        mismatch = np.flatnonzero(got_bits != expected_bits)
        assert mismatch.size == 0, (
            f"{qtype.name} (seed {SEED + int(qtype)}): {mismatch.size} values differ, first at {mismatch[0]}: "
            f"got {got[mismatch[0]]!r} expected {expected.reshape(-1)[mismatch[0]]!r}")


def test_quant_row_rejects_bad_input(tmp_path: Path) -> None:
    src, dst = tmp_path / "in.bin", tmp_path / "out.bin"
    src.write_bytes(np.zeros(33, dtype=np.float32).tobytes())
    proc = subprocess.run([str(edgellm_bin()), "quant-row", "--type", "q4_0", "--in", str(src), "--out", str(dst)],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "block size" in proc.stderr and "in.bin" in proc.stderr
    proc = subprocess.run([str(edgellm_bin()), "quant-row", "--type", "q4_K", "--in", str(src), "--out", str(dst)],
                          capture_output=True, text=True)
    assert proc.returncode != 0
