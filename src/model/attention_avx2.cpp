// AVX2 + FMA + F16C attention variant: f16 and q8_0 rows converted 8 lanes at a time, f32 dot/axpy.
#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "kernels/quant_blocks.h"
#include "kernels/x86/exp_avx2.h"
#include "model/attention_tile.h"
#include "util/half.h"

namespace edgellm {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// 8 values of a cached row from value i on (i a multiple of 8), as f32.
template <DType kType>
inline __m256 load8(const uint8_t* row, int64_t i) {
  if constexpr (kType == DType::kF32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + i);
  } else if constexpr (kType == DType::kF16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row) + i / 8));
  } else {  // kQ8_0
    const BlockQ8_0& block = reinterpret_cast<const BlockQ8_0*>(row)[i / 32];
    const __m256 d = _mm256_cvtph_ps(_mm_set1_epi16(static_cast<int16_t>(block.d)));
    const __m128i q8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(block.qs + i % 32));
    return _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q8)));
  }
}

struct Avx2Ops {
  // Decode straight from the rows (attention_tile.h): vectors of kRowVector values, up to kRowVectors of
  // them per pass over the value rows.
  static constexpr int64_t kRowVector = 8;
  static constexpr int kRowVectors = 2;
  // Scores of GN heads (q, d apart) against keys rows[0 .. n), two keys at a time (2 GN accumulators of the
  // 16 registers), each key's 8 values converted once for all heads; asks for pf's rows as it goes.
  template <DType kType, int GN>
  static void scores_rows_heads(const float* q, int64_t d, const uint8_t* const* rows, int64_t n, float* s,
                                const attention_detail::RowPrefetch& pf) {
    for (int64_t j = 0; j < n; j += 2) {
      // This step's share of the rows ahead (written out here: as a shared inline function the same loop
      // ran 2.5x slower in kernels_bench attention_decode, measured twice).
      {
        const int64_t per_step = n > 0 ? (pf.n + n - 1) / n * 2 : 0;
        for (int64_t r = j / 2 * per_step; r < std::min(j / 2 * per_step + per_step, pf.n); ++r) {
          for (size_t off = 0; off < pf.bytes; off += 64) {
            __builtin_prefetch(pf.k[r] + off);
            __builtin_prefetch(pf.v[r] + off);
          }
        }
      }
      const uint8_t* r0 = rows[j];
      const uint8_t* r1 = rows[std::min(j + 1, n - 1)];  // a lone last key repeated; its sum is not stored
      __m256 acc[GN][2];
      for (int g = 0; g < GN; ++g) acc[g][0] = acc[g][1] = _mm256_setzero_ps();
      for (int64_t i = 0; i < d; i += 8) {
        const __m256 k0 = load8<kType>(r0, i), k1 = load8<kType>(r1, i);
        for (int g = 0; g < GN; ++g) {
          const __m256 qg = _mm256_loadu_ps(q + g * d + i);
          acc[g][0] = _mm256_fmadd_ps(qg, k0, acc[g][0]);
          acc[g][1] = _mm256_fmadd_ps(qg, k1, acc[g][1]);
        }
      }
      for (int g = 0; g < GN; ++g) {
        s[g * kAttnKeyTile + j] = hsum(acc[g][0]);
        if (j + 1 < n) s[g * kAttnKeyTile + j + 1] = hsum(acc[g][1]);
      }
    }
  }

  // out[g * d + i] += sum_j p[g * kAttnKeyTile + j] rows[j][i] for GN heads, NC x 8 dims at a time.
  template <DType kType, int GN, int NC>
  static void weighted_sum_rows_heads(const float* p, const uint8_t* const* rows, int64_t n, int64_t i0, int64_t d,
                                      float* out) {
    __m256 acc[GN][NC];
    for (int g = 0; g < GN; ++g) {
      for (int c = 0; c < NC; ++c) acc[g][c] = _mm256_loadu_ps(out + g * d + i0 + 8 * c);
    }
    for (int64_t j = 0; j < n; ++j) {
      __m256 v[NC];
      for (int c = 0; c < NC; ++c) v[c] = load8<kType>(rows[j], i0 + 8 * c);
      for (int g = 0; g < GN; ++g) {
        const __m256 pj = _mm256_broadcast_ss(p + g * kAttnKeyTile + j);
        for (int c = 0; c < NC; ++c) acc[g][c] = _mm256_fmadd_ps(pj, v[c], acc[g][c]);
      }
    }
    for (int g = 0; g < GN; ++g) {
      for (int c = 0; c < NC; ++c) _mm256_storeu_ps(out + g * d + i0 + 8 * c, acc[g][c]);
    }
  }

  static void load_row(DType type, const uint8_t* src, int64_t n, float* dst) {
    if (type == DType::kF32) {
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
    } else if (type == DType::kF16) {
      const auto* h = reinterpret_cast<const uint16_t*>(src);
      int64_t i = 0;
      for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i))));
      }
      for (; i < n; ++i) dst[i] = fp16_to_f32(h[i]);
    } else {  // kQ8_0: n is a multiple of 32
      const auto* blocks = reinterpret_cast<const BlockQ8_0*>(src);
      for (int64_t ib = 0; ib < n / 32; ++ib) {
        const __m256 d = _mm256_set1_ps(fp16_to_f32(blocks[ib].d));
        for (int i = 0; i < 32; i += 8) {
          const __m128i q8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(blocks[ib].qs + i));
          _mm256_storeu_ps(dst + ib * 32 + i, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q8))));
        }
      }
    }
  }
  static float dot(const float* a, const float* b, int64_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
      acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    float s = hsum(_mm256_add_ps(acc0, acc1));
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
  }
  static void scale(float* y, float a, int64_t n) {
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), va));
    for (; i < n; ++i) y[i] *= a;
  }
  static void axpy(float a, const float* x, float* y, int64_t n) {
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    }
    for (; i < n; ++i) y[i] += a * x[i];
  }
  static void weighted_sum(const float* p, const float* v, int64_t n, int64_t d, float* out) {
    int64_t i = 0;
    for (; i + 32 <= d; i += 32) {
      __m256 a0 = _mm256_loadu_ps(out + i), a1 = _mm256_loadu_ps(out + i + 8);
      __m256 a2 = _mm256_loadu_ps(out + i + 16), a3 = _mm256_loadu_ps(out + i + 24);
      for (int64_t j = 0; j < n; ++j) {
        const __m256 pj = _mm256_broadcast_ss(p + j);
        const float* row = v + j * d + i;
        a0 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(row), a0);
        a1 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(row + 8), a1);
        a2 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(row + 16), a2);
        a3 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(row + 24), a3);
      }
      _mm256_storeu_ps(out + i, a0);
      _mm256_storeu_ps(out + i + 8, a1);
      _mm256_storeu_ps(out + i + 16, a2);
      _mm256_storeu_ps(out + i + 24, a3);
    }
    for (; i + 8 <= d; i += 8) {
      __m256 a = _mm256_loadu_ps(out + i);
      for (int64_t j = 0; j < n; ++j) a = _mm256_fmadd_ps(_mm256_broadcast_ss(p + j), _mm256_loadu_ps(v + j * d + i), a);
      _mm256_storeu_ps(out + i, a);
    }
    for (; i < d; ++i) {
      float a = out[i];
      for (int64_t j = 0; j < n; ++j) a += p[j] * v[j * d + i];
      out[i] = a;
    }
  }
  // 64 keys in 8 accumulators, one broadcast of q per dimension.
  static void scores_t(const float* q, const float* kt, int64_t d, float* s) {
    static_assert(kAttnKeyTile == 64);
    __m256 acc[8];
    for (int c = 0; c < 8; ++c) acc[c] = _mm256_setzero_ps();
    for (int64_t i = 0; i < d; ++i) {
      const __m256 qi = _mm256_broadcast_ss(q + i);
      const float* row = kt + i * kAttnKeyTile;
      for (int c = 0; c < 8; ++c) acc[c] = _mm256_fmadd_ps(qi, _mm256_loadu_ps(row + 8 * c), acc[c]);
    }
    for (int c = 0; c < 8; ++c) _mm256_storeu_ps(s + 8 * c, acc[c]);
  }
  static void transpose(const float* rows, int64_t m, int64_t d, float* kt) {
    attention_detail::transpose_rows(rows, m, d, kt);
  }
  static float exp_sum(float* s, int64_t n, float m) {
    const __m256 vm = _mm256_set1_ps(m);
    __m256 acc = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
      const __m256 e = kernels::x86::exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(s + j), vm));
      _mm256_storeu_ps(s + j, e);
      acc = _mm256_add_ps(acc, e);
    }
    float sum = hsum(acc);
    for (; j < n; ++j) sum += (s[j] = std::exp(s[j] - m));
    return sum;
  }

};

}  // namespace

void attention_block_avx2(const AttentionBlock& block, float* work) {
  attention_detail::attention_block_impl<Avx2Ops>(block, work);
}

}  // namespace edgellm

#endif  // __x86_64__
