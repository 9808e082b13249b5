// AVX2 + FMA + F16C matmul with f32 activations, for every weight type: the per-type dequantizers
// for 8-lane vectors, plugged into the shared tile kernel of x86/matmul_tile.h (4 rows x 1 token for
// decode, 1 row x 4 tokens for prefill: 16 ymm registers allow no more with two accumulators each).
//
// This file is compiled with -mavx2 -mfma -mf16c. It must not define inline functions that baseline
// translation units also instantiate (ODR: the linker could keep the AVX2 copy), so it uses
// intrinsics, an anonymous namespace and templates over VecAvx2 only; scalar helpers come from
// ref/quant_ref.cpp, which is compiled for the baseline ISA.
#if defined(__x86_64__) || defined(_M_X64)

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/kernel_table.h"
#include "kernels/quant_blocks.h"
#include "kernels/quant_edgellm.h"
#include "kernels/ref/quant_ref.h"
#include "kernels/x86/matmul_tile.h"

namespace edgellm::kernels {
namespace {

struct VecAvx2 {
  using T = __m256;
  static constexpr int kLanes = 8;
  static constexpr int kDecodeRows = 4;
  static constexpr int kPrefillRows = 1;
  static constexpr int kPrefillTokens = 4;
  static T zero() { return _mm256_setzero_ps(); }
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  static T fmadd(T a, T b, T acc) { return _mm256_fmadd_ps(a, b, acc); }
  static T add(T a, T b) { return _mm256_add_ps(a, b); }
  static float hsum(T v) {
    __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
    sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
    return _mm_cvtss_f32(sum);
  }
};

float fp16_scalar(uint16_t h) { return _cvtsh_ss(h); }  // exact, like util/half.h

__m256 i32_to_f32(__m256i v) { return _mm256_cvtepi32_ps(v); }

// ---- dequantizers ----
// Each has: `Block` (the bytes of kElems weights), kElems (a multiple of 8), and
// `load(const Block&, __m256* w)` writing kElems / 8 vectors of weights in row order.
// Plain types (kPlain) also give `scalar(row, k)` for the tail when k is not a multiple of kElems.

struct DequantF32 {
  struct Block { float v[32]; };
  static constexpr int kElems = 32;
  static constexpr bool kPlain = true;
  static void load(const Block& b, __m256* w) {
    for (int c = 0; c < 4; ++c) w[c] = _mm256_loadu_ps(b.v + 8 * c);
  }
  static float scalar(const uint8_t* row, int64_t k) {
    float v;
    std::memcpy(&v, row + 4 * k, sizeof(v));
    return v;
  }
};

struct DequantF16 {
  struct Block { uint16_t v[32]; };
  static constexpr int kElems = 32;
  static constexpr bool kPlain = true;
  static void load(const Block& b, __m256* w) {
    for (int c = 0; c < 4; ++c) {
      w[c] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.v + 8 * c)));
    }
  }
  static float scalar(const uint8_t* row, int64_t k) {
    uint16_t h;
    std::memcpy(&h, row + 2 * k, sizeof(h));
    return fp16_scalar(h);
  }
};

struct DequantBF16 {
  struct Block { uint16_t v[32]; };
  static constexpr int kElems = 32;
  static constexpr bool kPlain = true;
  static void load(const Block& b, __m256* w) {
    for (int c = 0; c < 4; ++c) {
      const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.v + 8 * c)));
      w[c] = _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
    }
  }
  static float scalar(const uint8_t* row, int64_t k) {
    uint16_t h;
    std::memcpy(&h, row + 2 * k, sizeof(h));
    const uint32_t bits = static_cast<uint32_t>(h) << 16;
    float v;
    std::memcpy(&v, &bits, sizeof(v));
    return v;
  }
};

struct DequantQ8_0 {
  using Block = BlockQ8_0;
  static constexpr int kElems = 32;
  static constexpr bool kPlain = false;
  static void load(const Block& b, __m256* w) {
    const __m256 d = _mm256_set1_ps(fp16_scalar(b.d));
    for (int c = 0; c < 4; ++c) {
      const __m128i q8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.qs + 8 * c));
      w[c] = _mm256_mul_ps(i32_to_f32(_mm256_cvtepi8_epi32(q8)), d);
    }
  }
};

// Nibbles of the 16 bytes of a Q4/Q5 block: elements 0..15 are the low nibbles, 16..31 the high ones.
void split_nibbles(const uint8_t* qs, __m128i& lo, __m128i& hi) {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i mask = _mm_set1_epi8(0x0F);
  lo = _mm_and_si128(bytes, mask);
  hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask);
}

// Elements 8c..8c+7 of a block as int32, from the nibble vectors (unsigned 0..15).
__m256i nibble_group(const __m128i& lo, const __m128i& hi, int c) {
  const __m128i src = c < 2 ? lo : hi;
  return _mm256_cvtepu8_epi32((c & 1) ? _mm_srli_si128(src, 8) : src);
}

// Bit 4 of elements 8c..8c+7 of a Q5 block: bits 8c..8c+7 of qh, as 0 or 16 per int32 lane.
__m256i q5_high_bits(uint32_t qh, int c) {
  const __m256i select = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  const __m256i bits = _mm256_and_si256(_mm256_set1_epi32(static_cast<int>(qh >> (8 * c))), select);
  return _mm256_and_si256(_mm256_cmpeq_epi32(bits, select), _mm256_set1_epi32(16));
}

struct DequantQ4_0 {
  using Block = BlockQ4_0;
  static constexpr int kElems = 32;
  static constexpr bool kPlain = false;
  static void load(const Block& b, __m256* w) {
    const __m256 d = _mm256_set1_ps(fp16_scalar(b.d));
    __m128i lo, hi;
    split_nibbles(b.qs, lo, hi);
    const __m256i eight = _mm256_set1_epi32(8);
    for (int c = 0; c < 4; ++c) {
      w[c] = _mm256_mul_ps(i32_to_f32(_mm256_sub_epi32(nibble_group(lo, hi, c), eight)), d);
    }
  }
};

// IQ4_NL: x = d * codebook[q], the nibbles in Q4_0's order; vpshufb looks them up in the signed
// codebook (small integers, exact in f32), then the reference's single product.
struct DequantIQ4_NL {
  using Block = BlockIQ4_NL;
  static constexpr int kElems = 32;
  static constexpr bool kPlain = false;
  static void load(const Block& b, __m256* w) {
    const __m256 d = _mm256_set1_ps(fp16_scalar(b.d));
    const __m128i codebook = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4NLValues));
    __m128i lo, hi;
    split_nibbles(b.qs, lo, hi);
    lo = _mm_shuffle_epi8(codebook, lo);
    hi = _mm_shuffle_epi8(codebook, hi);
    for (int c = 0; c < 4; ++c) {
      const __m128i src = c < 2 ? lo : hi;
      const __m256i q = _mm256_cvtepi8_epi32((c & 1) ? _mm_srli_si128(src, 8) : src);
      w[c] = _mm256_mul_ps(i32_to_f32(q), d);
    }
  }
};

struct DequantQ4_1 {
  using Block = BlockQ4_1;
  static constexpr int kElems = 32;
  static constexpr bool kPlain = false;
  static void load(const Block& b, __m256* w) {
    const __m256 d = _mm256_set1_ps(fp16_scalar(b.d));
    const __m256 m = _mm256_set1_ps(fp16_scalar(b.m));
    __m128i lo, hi;
    split_nibbles(b.qs, lo, hi);
    for (int c = 0; c < 4; ++c) {
      // mul then add (not FMA): the same two roundings as the reference dequantizer.
      w[c] = _mm256_add_ps(_mm256_mul_ps(i32_to_f32(nibble_group(lo, hi, c)), d), m);
    }
  }
};

struct DequantQ5_0 {
  using Block = BlockQ5_0;
  static constexpr int kElems = 32;
  static constexpr bool kPlain = false;
  static void load(const Block& b, __m256* w) {
    const __m256 d = _mm256_set1_ps(fp16_scalar(b.d));
    uint32_t qh;
    std::memcpy(&qh, b.qh, sizeof(qh));
    __m128i lo, hi;
    split_nibbles(b.qs, lo, hi);
    const __m256i sixteen = _mm256_set1_epi32(16);
    for (int c = 0; c < 4; ++c) {
      const __m256i q = _mm256_or_si256(nibble_group(lo, hi, c), q5_high_bits(qh, c));
      w[c] = _mm256_mul_ps(i32_to_f32(_mm256_sub_epi32(q, sixteen)), d);
    }
  }
};

struct DequantQ5_1 {
  using Block = BlockQ5_1;
  static constexpr int kElems = 32;
  static constexpr bool kPlain = false;
  static void load(const Block& b, __m256* w) {
    const __m256 d = _mm256_set1_ps(fp16_scalar(b.d));
    const __m256 m = _mm256_set1_ps(fp16_scalar(b.m));
    uint32_t qh;
    std::memcpy(&qh, b.qh, sizeof(qh));
    __m128i lo, hi;
    split_nibbles(b.qs, lo, hi);
    for (int c = 0; c < 4; ++c) {
      const __m256i q = _mm256_or_si256(nibble_group(lo, hi, c), q5_high_bits(qh, c));
      w[c] = _mm256_add_ps(_mm256_mul_ps(i32_to_f32(q), d), m);
    }
  }
};

// Types without a vector dequantizer yet (K-quants, Q8_1, Q8_K): the scalar reference dequantizes
// the block onto the stack, then the same tile kernel runs on it.
template <class B, int kBlockElems>
struct DequantViaScratch {
  using Block = B;
  static constexpr int kElems = kBlockElems;
  static constexpr bool kPlain = false;
  static void load(const Block& b, __m256* w) {
    alignas(32) float tmp[kBlockElems];
    ref::dequantize_block(b, tmp);
    for (int c = 0; c < kBlockElems / 8; ++c) w[c] = _mm256_load_ps(tmp + 8 * c);
  }
};

KernelTable make_table() {
  KernelTable table;
  table.isa = Isa::kAvx2;
  auto set = [&](DType type, MatmulRowsFn fn) { table.matmul_f32act[type_slot(type)] = fn; };
  set(DType::kF32, x86::matmul_rows<VecAvx2, DequantF32>);
  set(DType::kF16, x86::matmul_rows<VecAvx2, DequantF16>);
  set(DType::kBF16, x86::matmul_rows<VecAvx2, DequantBF16>);
  set(DType::kQ8_0, x86::matmul_rows<VecAvx2, DequantQ8_0>);
  set(DType::kQ4_0, x86::matmul_rows<VecAvx2, DequantQ4_0>);
  set(DType::kQ4_1, x86::matmul_rows<VecAvx2, DequantQ4_1>);
  set(DType::kQ5_0, x86::matmul_rows<VecAvx2, DequantQ5_0>);
  set(DType::kQ5_1, x86::matmul_rows<VecAvx2, DequantQ5_1>);
  set(DType::kQ8_1, x86::matmul_rows<VecAvx2, DequantViaScratch<BlockQ8_1, 32>>);
  set(DType::kQ2_K, x86::matmul_rows<VecAvx2, DequantViaScratch<BlockQ2_K, kQK_K>>);
  set(DType::kQ3_K, x86::matmul_rows<VecAvx2, DequantViaScratch<BlockQ3_K, kQK_K>>);
  set(DType::kQ4_K, x86::matmul_rows<VecAvx2, DequantViaScratch<BlockQ4_K, kQK_K>>);
  set(DType::kIQ4_NL, x86::matmul_rows<VecAvx2, DequantIQ4_NL>);
  set(DType::kQ5_K, x86::matmul_rows<VecAvx2, DequantViaScratch<BlockQ5_K, kQK_K>>);
  set(DType::kQ6_K, x86::matmul_rows<VecAvx2, DequantViaScratch<BlockQ6_K, kQK_K>>);
  set(DType::kQ8_K, x86::matmul_rows<VecAvx2, DequantViaScratch<BlockQ8_K, kQK_K>>);
  // edgellm-only types: the scalar f32-activation kernel (their fast path is the int8 column).
  set(DType::kE4G64, ref::matmul_rows_e4);
  set(DType::kE4G128, ref::matmul_rows_e4);
  set(DType::kE4G256, ref::matmul_rows_e4);
  fill_q8act_avx2(table);
  table.silu_mul = silu_mul_avx2;
  return table;
}

}  // namespace

const KernelTable& avx2_kernels() {
  static const KernelTable table = make_table();
  return table;
}

}  // namespace edgellm::kernels

#endif  // x86-64
