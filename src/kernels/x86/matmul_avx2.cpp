// AVX2 + FMA + F16C matmul with f32 activations, for every weight type.
//
// One GEMM template over a "dequantizer" per block type (the structure of ikawrakow/ik_llama.cpp:
// ggml/src/iqk/iqk_gemm_kquants.cpp): the dequantizer turns one block of a weight row into 8-float
// vectors in registers, and the tile kernel multiplies it with a few tokens at once, so prefill reads
// each weight block once per tile of tokens instead of once per token.
//
// Numerics: the dequantized weights are bit-identical to the scalar reference (same products, no
// FMA in dequantization); only the summation order differs (8 lanes x 2 accumulators, then a fixed
// horizontal sum). Each (row, token) output is computed by the same instruction sequence whatever
// tile it lands in, so results do not depend on the thread split.
//
// This file is compiled with -mavx2 -mfma -mf16c. It must not define inline functions that baseline
// translation units also instantiate (ODR: the linker could keep the AVX2 copy), so it uses
// intrinsics only and keeps its helpers in an anonymous namespace; scalar helpers come from
// ref/quant_ref.cpp, which is compiled for the baseline ISA.
#if defined(__x86_64__) || defined(_M_X64)

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/kernel_table.h"
#include "kernels/quant_blocks.h"
#include "kernels/ref/quant_ref.h"

namespace edgellm::kernels {
namespace {

float hsum(__m256 v) {
  __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
  sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
  return _mm_cvtss_f32(sum);
}

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

// ---- the tile kernel ----

// Rows [row, row + NR) x tokens [token, token + NT). Two accumulators per (row, token) (even and odd
// 8-lane groups) keep 8 FMA chains in flight for both tile shapes used: 4x1 (decode) and 1x4.
template <class D, int NR, int NT>
void matmul_tile(const MatmulArgs& a, int64_t row_begin, int64_t row, int64_t token) {
  using Block = typename D::Block;
  constexpr int kGroups = D::kElems / 8;
  static_assert(kGroups % 2 == 0);
  const int64_t n_blocks = a.k / D::kElems;

  const Block* w_rows[NR];
  for (int r = 0; r < NR; ++r) {
    w_rows[r] = reinterpret_cast<const Block*>(a.w + static_cast<size_t>(row + r) * a.w_row_bytes);
  }
  const float* x_rows[NT];
  for (int t = 0; t < NT; ++t) x_rows[t] = a.x + (token + t) * a.k;

  __m256 acc_even[NR][NT];
  __m256 acc_odd[NR][NT];
  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) acc_even[r][t] = acc_odd[r][t] = _mm256_setzero_ps();
  }

  for (int64_t block_idx = 0; block_idx < n_blocks; ++block_idx) {
    for (int r = 0; r < NR; ++r) {
      __m256 w[kGroups];
      D::load(w_rows[r][block_idx], w);
      for (int t = 0; t < NT; ++t) {
        const float* x = x_rows[t] + block_idx * D::kElems;
        for (int c = 0; c < kGroups; c += 2) {
          acc_even[r][t] = _mm256_fmadd_ps(w[c], _mm256_loadu_ps(x + 8 * c), acc_even[r][t]);
          acc_odd[r][t] = _mm256_fmadd_ps(w[c + 1], _mm256_loadu_ps(x + 8 * c + 8), acc_odd[r][t]);
        }
      }
    }
  }

  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) {
      float sum = hsum(_mm256_add_ps(acc_even[r][t], acc_odd[r][t]));
      if constexpr (D::kPlain) {
        // k not a multiple of 32: the last few elements, in order.
        const auto* w_row = reinterpret_cast<const uint8_t*>(w_rows[r]);
        for (int64_t k = n_blocks * D::kElems; k < a.k; ++k) sum += D::scalar(w_row, k) * x_rows[t][k];
      }
      a.y[(token + t) * a.y_stride + (row + r - row_begin)] = sum;
    }
  }
}

template <class D, int NR>
void matmul_token_tail(const MatmulArgs& a, int64_t row_begin, int64_t row, int64_t token, int64_t n) {
  switch (n) {
    case 1: matmul_tile<D, NR, 1>(a, row_begin, row, token); break;
    case 2: matmul_tile<D, NR, 2>(a, row_begin, row, token); break;
    case 3: matmul_tile<D, NR, 3>(a, row_begin, row, token); break;
    default: break;
  }
}

// Rows are taken in panels whose weights stay in L2 while every token tile passes over them; within
// a panel, token tiles are outermost so the few x rows of a tile stay in L1.
template <class D>
void matmul_rows_avx2(const MatmulArgs& a, int64_t row_begin, int64_t row_end) {
  constexpr int64_t kRowPanel = 64;
  for (int64_t panel = row_begin; panel < row_end; panel += kRowPanel) {
    const int64_t panel_end = panel + kRowPanel < row_end ? panel + kRowPanel : row_end;
    if (a.n_tokens == 1) {
      int64_t row = panel;
      for (; row + 4 <= panel_end; row += 4) matmul_tile<D, 4, 1>(a, row_begin, row, 0);
      for (; row < panel_end; ++row) matmul_tile<D, 1, 1>(a, row_begin, row, 0);
      continue;
    }
    int64_t token = 0;
    for (; token + 4 <= a.n_tokens; token += 4) {
      for (int64_t row = panel; row < panel_end; ++row) matmul_tile<D, 1, 4>(a, row_begin, row, token);
    }
    if (token < a.n_tokens) {
      for (int64_t row = panel; row < panel_end; ++row) {
        matmul_token_tail<D, 1>(a, row_begin, row, token, a.n_tokens - token);
      }
    }
  }
}

KernelTable make_table() {
  KernelTable table;
  table.isa = Isa::kAvx2;
  auto set = [&](DType type, MatmulRowsFn fn) { table.matmul_f32act[static_cast<size_t>(type)] = fn; };
  set(DType::kF32, matmul_rows_avx2<DequantF32>);
  set(DType::kF16, matmul_rows_avx2<DequantF16>);
  set(DType::kBF16, matmul_rows_avx2<DequantBF16>);
  set(DType::kQ8_0, matmul_rows_avx2<DequantQ8_0>);
  set(DType::kQ4_0, matmul_rows_avx2<DequantQ4_0>);
  set(DType::kQ4_1, matmul_rows_avx2<DequantQ4_1>);
  set(DType::kQ5_0, matmul_rows_avx2<DequantQ5_0>);
  set(DType::kQ5_1, matmul_rows_avx2<DequantQ5_1>);
  set(DType::kQ8_1, matmul_rows_avx2<DequantViaScratch<BlockQ8_1, 32>>);
  set(DType::kQ2_K, matmul_rows_avx2<DequantViaScratch<BlockQ2_K, kQK_K>>);
  set(DType::kQ3_K, matmul_rows_avx2<DequantViaScratch<BlockQ3_K, kQK_K>>);
  set(DType::kQ4_K, matmul_rows_avx2<DequantViaScratch<BlockQ4_K, kQK_K>>);
  set(DType::kQ5_K, matmul_rows_avx2<DequantViaScratch<BlockQ5_K, kQK_K>>);
  set(DType::kQ6_K, matmul_rows_avx2<DequantViaScratch<BlockQ6_K, kQK_K>>);
  set(DType::kQ8_K, matmul_rows_avx2<DequantViaScratch<BlockQ8_K, kQK_K>>);
  return table;
}

}  // namespace

const KernelTable& avx2_kernels() {
  static const KernelTable table = make_table();
  return table;
}

}  // namespace edgellm::kernels

#endif  // x86-64
