// AVX-512 (F, BW, VL, DQ) matmul with f32 activations, for every weight type: the per-type
// dequantizers for 16-lane vectors, plugged into the shared tile kernel of x86/matmul_tile.h.
// 32 zmm registers allow 2 rows x 4 tokens for prefill (16 accumulators) and 8 rows for decode.
//
// Compiled with the AVX-512 flags; the same ODR rules as matmul_avx2.cpp apply (intrinsics, an
// anonymous namespace, templates over VecAvx512 only).
#if defined(__x86_64__) || defined(_M_X64)

// GCC 12's AVX-512 headers start vectors from _mm512_undefined_*() and trip its own uninitialized-use
// warnings in every conversion intrinsic (GCC bug 105593, fixed in GCC 13); nothing here is uninitialized.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

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

struct VecAvx512 {
  using T = __m512;
  static constexpr int kLanes = 16;
  static constexpr int kDecodeRows = 8;
  static constexpr int kPrefillRows = 2;
  static constexpr int kPrefillTokens = 4;
  static T zero() { return _mm512_setzero_ps(); }
  static T load(const float* p) { return _mm512_loadu_ps(p); }
  static T fmadd(T a, T b, T acc) { return _mm512_fmadd_ps(a, b, acc); }
  static T add(T a, T b) { return _mm512_add_ps(a, b); }
  static float hsum(T v) {
    __m256 half = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 sum = _mm_add_ps(_mm256_castps256_ps128(half), _mm256_extractf128_ps(half, 1));
    sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
    sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
    return _mm_cvtss_f32(sum);
  }
};

float fp16_scalar(uint16_t h) { return _cvtsh_ss(h); }  // exact, like util/half.h

__m128i load_128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
__m256i load_256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

struct DequantF32 {
  struct Block { float v[32]; };
  static constexpr int kElems = 32;
  static constexpr bool kPlain = true;
  static void load(const Block& b, __m512* w) {
    w[0] = _mm512_loadu_ps(b.v);
    w[1] = _mm512_loadu_ps(b.v + 16);
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
  static void load(const Block& b, __m512* w) {
    w[0] = _mm512_cvtph_ps(load_256(b.v));
    w[1] = _mm512_cvtph_ps(load_256(b.v + 16));
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
  static void load(const Block& b, __m512* w) {
    for (int c = 0; c < 2; ++c) {
      const __m512i wide = _mm512_cvtepu16_epi32(load_256(b.v + 16 * c));
      w[c] = _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
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
  static void load(const Block& b, __m512* w) {
    const __m512 d = _mm512_set1_ps(fp16_scalar(b.d));
    w[0] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(load_128(b.qs))), d);
    w[1] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(load_128(b.qs + 16))), d);
  }
};

// Low nibbles of a Q4/Q5 block are elements 0..15, high nibbles 16..31: one 16-lane vector each.
void nibbles_i32(const uint8_t* qs, __m512i& lo, __m512i& hi) {
  const __m512i bytes = _mm512_cvtepu8_epi32(load_128(qs));
  const __m512i mask = _mm512_set1_epi32(0x0F);
  lo = _mm512_and_si512(bytes, mask);
  hi = _mm512_srli_epi32(bytes, 4);
}

struct DequantQ4_0 {
  using Block = BlockQ4_0;
  static constexpr int kElems = 32;
  static constexpr bool kPlain = false;
  static void load(const Block& b, __m512* w) {
    const __m512 d = _mm512_set1_ps(fp16_scalar(b.d));
    const __m512i eight = _mm512_set1_epi32(8);
    __m512i lo, hi;
    nibbles_i32(b.qs, lo, hi);
    w[0] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(lo, eight)), d);
    w[1] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(hi, eight)), d);
  }
};

// IQ4_NL: x = d * codebook[q], the nibbles in Q4_0's order; vpermps picks each element's codebook
// value from one register holding the 16 values as floats (exact), then the reference's single product.
struct CodebookF32 {
  float v[16];
};
constexpr CodebookF32 iq4nl_codebook_f32() {
  CodebookF32 table{};
  for (int i = 0; i < 16; ++i) table.v[i] = static_cast<float>(kIQ4NLValues[i]);
  return table;
}
alignas(64) constexpr CodebookF32 kIQ4NLCodebookF32 = iq4nl_codebook_f32();

struct DequantIQ4_NL {
  using Block = BlockIQ4_NL;
  static constexpr int kElems = 32;
  static constexpr bool kPlain = false;
  static void load(const Block& b, __m512* w) {
    const __m512 d = _mm512_set1_ps(fp16_scalar(b.d));
    const __m512 codebook = _mm512_load_ps(kIQ4NLCodebookF32.v);
    __m512i lo, hi;
    nibbles_i32(b.qs, lo, hi);
    w[0] = _mm512_mul_ps(_mm512_permutexvar_ps(lo, codebook), d);
    w[1] = _mm512_mul_ps(_mm512_permutexvar_ps(hi, codebook), d);
  }
};

struct DequantQ4_1 {
  using Block = BlockQ4_1;
  static constexpr int kElems = 32;
  static constexpr bool kPlain = false;
  static void load(const Block& b, __m512* w) {
    const __m512 d = _mm512_set1_ps(fp16_scalar(b.d));
    const __m512 m = _mm512_set1_ps(fp16_scalar(b.m));
    __m512i lo, hi;
    nibbles_i32(b.qs, lo, hi);
    // mul then add (not FMA): the same two roundings as the reference dequantizer.
    w[0] = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(lo), d), m);
    w[1] = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(hi), d), m);
  }
};

// 5-bit quants: bit i of qh (little-endian uint32) adds 16 to element i.
void q5_i32(const uint8_t* qs, const uint8_t* qh_bytes, __m512i& lo, __m512i& hi) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, sizeof(qh));
  nibbles_i32(qs, lo, hi);
  const __m512i sixteen = _mm512_set1_epi32(16);
  lo = _mm512_mask_or_epi32(lo, static_cast<__mmask16>(qh & 0xFFFFu), lo, sixteen);
  hi = _mm512_mask_or_epi32(hi, static_cast<__mmask16>(qh >> 16), hi, sixteen);
}

struct DequantQ5_0 {
  using Block = BlockQ5_0;
  static constexpr int kElems = 32;
  static constexpr bool kPlain = false;
  static void load(const Block& b, __m512* w) {
    const __m512 d = _mm512_set1_ps(fp16_scalar(b.d));
    const __m512i sixteen = _mm512_set1_epi32(16);
    __m512i lo, hi;
    q5_i32(b.qs, b.qh, lo, hi);
    w[0] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(lo, sixteen)), d);
    w[1] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(hi, sixteen)), d);
  }
};

struct DequantQ5_1 {
  using Block = BlockQ5_1;
  static constexpr int kElems = 32;
  static constexpr bool kPlain = false;
  static void load(const Block& b, __m512* w) {
    const __m512 d = _mm512_set1_ps(fp16_scalar(b.d));
    const __m512 m = _mm512_set1_ps(fp16_scalar(b.m));
    __m512i lo, hi;
    q5_i32(b.qs, b.qh, lo, hi);
    w[0] = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(lo), d), m);
    w[1] = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(hi), d), m);
  }
};

// Types without a vector dequantizer yet (K-quants, Q8_1, Q8_K): the scalar reference dequantizes
// the block onto the stack, then the same tile kernel runs on it.
template <class B, int kBlockElems>
struct DequantViaScratch {
  using Block = B;
  static constexpr int kElems = kBlockElems;
  static constexpr bool kPlain = false;
  static void load(const Block& b, __m512* w) {
    alignas(64) float tmp[kBlockElems];
    ref::dequantize_block(b, tmp);
    for (int c = 0; c < kBlockElems / 16; ++c) w[c] = _mm512_load_ps(tmp + 16 * c);
  }
};

KernelTable make_table() {
  KernelTable table;
  table.isa = Isa::kAvx512;
  auto set = [&](DType type, MatmulRowsFn fn) { table.matmul_f32act[type_slot(type)] = fn; };
  set(DType::kF32, x86::matmul_rows<VecAvx512, DequantF32>);
  set(DType::kF16, x86::matmul_rows<VecAvx512, DequantF16>);
  set(DType::kBF16, x86::matmul_rows<VecAvx512, DequantBF16>);
  set(DType::kQ8_0, x86::matmul_rows<VecAvx512, DequantQ8_0>);
  set(DType::kQ4_0, x86::matmul_rows<VecAvx512, DequantQ4_0>);
  set(DType::kQ4_1, x86::matmul_rows<VecAvx512, DequantQ4_1>);
  set(DType::kQ5_0, x86::matmul_rows<VecAvx512, DequantQ5_0>);
  set(DType::kQ5_1, x86::matmul_rows<VecAvx512, DequantQ5_1>);
  set(DType::kQ8_1, x86::matmul_rows<VecAvx512, DequantViaScratch<BlockQ8_1, 32>>);
  set(DType::kQ2_K, x86::matmul_rows<VecAvx512, DequantViaScratch<BlockQ2_K, kQK_K>>);
  set(DType::kQ3_K, x86::matmul_rows<VecAvx512, DequantViaScratch<BlockQ3_K, kQK_K>>);
  set(DType::kQ4_K, x86::matmul_rows<VecAvx512, DequantViaScratch<BlockQ4_K, kQK_K>>);
  set(DType::kIQ4_NL, x86::matmul_rows<VecAvx512, DequantIQ4_NL>);
  set(DType::kQ5_K, x86::matmul_rows<VecAvx512, DequantViaScratch<BlockQ5_K, kQK_K>>);
  set(DType::kQ6_K, x86::matmul_rows<VecAvx512, DequantViaScratch<BlockQ6_K, kQK_K>>);
  set(DType::kQ8_K, x86::matmul_rows<VecAvx512, DequantViaScratch<BlockQ8_K, kQK_K>>);
  // edgellm-only types: the scalar f32-activation kernel (their fast path is the int8 column).
  set(DType::kE4G64, ref::matmul_rows_e4);
  set(DType::kE4G128, ref::matmul_rows_e4);
  set(DType::kE4G256, ref::matmul_rows_e4);
  fill_q8act_avx512(table);
  table.silu_mul = silu_mul_avx512;
  return table;
}

}  // namespace

const KernelTable& avx512_kernels() {
  static const KernelTable table = make_table();
  return table;
}

}  // namespace edgellm::kernels

#endif  // x86-64
