// AVX-512 attention variant: f16 and q8_0 rows converted 16 lanes at a time, f32 dot/axpy.
#if defined(__x86_64__)
// GCC 12 reports its own _mm512_undefined_ps() placeholders in the conversion and extract intrinsics as
// uninitialised.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "kernels/quant_blocks.h"
#include "kernels/x86/exp_avx512.h"
#include "model/attention_tile.h"
#include "util/half.h"

namespace edgellm {
namespace {

using attention_detail::in_groups_of_4;

// In-register transpose of 16 rows of 16 floats: r[i][j] -> r[j][i].
inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);      // per 128-bit lane: a0 b0 a1 b1
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);  //                   a2 b2 a3 b3
  }
  __m512 u[16];  // u[4g + c] holds, in lane L, column 4L + c of rows 4g .. 4g + 3
  for (int g = 0; g < 4; ++g) {
    const __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * g + 2]), d = _mm512_castps_pd(t[4 * g + 3]);
    u[4 * g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  for (int c = 0; c < 4; ++c) {
    const __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);  // lanes 0, 2 of each: columns c, c + 8
    const __m512 v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xdd);  // lanes 1, 3: columns c + 4, c + 12
    const __m512 w0 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
    const __m512 w1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xdd);
    r[c] = _mm512_shuffle_f32x4(v0, w0, 0x88);
    r[c + 8] = _mm512_shuffle_f32x4(v0, w0, 0xdd);
    r[c + 4] = _mm512_shuffle_f32x4(v1, w1, 0x88);
    r[c + 12] = _mm512_shuffle_f32x4(v1, w1, 0xdd);
  }
}

// 16 values of a cached row from value i on (i a multiple of 16), as f32.
template <DType kType>
inline __m512 load16(const uint8_t* row, int64_t i) {
  if constexpr (kType == DType::kF32) {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + i);
  } else if constexpr (kType == DType::kF16) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row) + i / 16));
  } else {  // kQ8_0
    const BlockQ8_0& block = reinterpret_cast<const BlockQ8_0*>(row)[i / 32];
    const __m512 d = _mm512_cvtph_ps(_mm256_set1_epi16(static_cast<int16_t>(block.d)));
    const __m128i q8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block.qs + i % 32));
    return _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q8)));
  }
}

// The four lane sums of a, b, c, d in one vector.
inline __m128 sum4(__m512 a, __m512 b, __m512 c, __m512 d) {
  const auto half = [](__m512 v) {
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  };
  return _mm_hadd_ps(_mm_hadd_ps(half(a), half(b)), _mm_hadd_ps(half(c), half(d)));
}

struct Avx512Ops {
  // Decode straight from the rows (attention_tile.h): vectors of kRowVector values, up to kRowVectors of
  // them per pass over the value rows.
  static constexpr int64_t kRowVector = 16;
  static constexpr int kRowVectors = 4;
  // Scores of GN heads (q, d apart) against keys rows[0 .. n), four keys at a time: 4 GN accumulators, each
  // key's 16 values converted once for all heads. s[g * kAttnKeyTile + j].
  template <DType kType, int GN>
  static void scores_rows_heads(const float* q, int64_t d, const uint8_t* const* rows, int64_t n, float* s,
                                const attention_detail::RowPrefetch& pf) {
    for (int64_t j = 0; j < n; j += 4) {
      // This step's share of the rows ahead (written out here: as a shared inline function the same loop
      // ran 2.5x slower in kernels_bench attention_decode, measured twice).
      {
        const int64_t per_step = n > 0 ? (pf.n + n - 1) / n * 4 : 0;
        for (int64_t r = j / 4 * per_step; r < std::min(j / 4 * per_step + per_step, pf.n); ++r) {
          for (size_t off = 0; off < pf.bytes; off += 64) {
            __builtin_prefetch(pf.k[r] + off);
            __builtin_prefetch(pf.v[r] + off);
          }
        }
      }
      // A tail of fewer than 4 keys repeats the last one; its extra sums are not stored.
      const uint8_t* r0 = rows[j];
      const uint8_t* r1 = rows[std::min(j + 1, n - 1)];
      const uint8_t* r2 = rows[std::min(j + 2, n - 1)];
      const uint8_t* r3 = rows[std::min(j + 3, n - 1)];
      __m512 acc[GN][4];
      for (int g = 0; g < GN; ++g) {
        for (int c = 0; c < 4; ++c) acc[g][c] = _mm512_setzero_ps();
      }
      for (int64_t i = 0; i < d; i += 16) {
        const __m512 k0 = load16<kType>(r0, i), k1 = load16<kType>(r1, i);
        const __m512 k2 = load16<kType>(r2, i), k3 = load16<kType>(r3, i);
        for (int g = 0; g < GN; ++g) {
          const __m512 qg = _mm512_loadu_ps(q + g * d + i);
          acc[g][0] = _mm512_fmadd_ps(qg, k0, acc[g][0]);
          acc[g][1] = _mm512_fmadd_ps(qg, k1, acc[g][1]);
          acc[g][2] = _mm512_fmadd_ps(qg, k2, acc[g][2]);
          acc[g][3] = _mm512_fmadd_ps(qg, k3, acc[g][3]);
        }
      }
      for (int g = 0; g < GN; ++g) {
        alignas(16) float sums[4];
        _mm_store_ps(sums, sum4(acc[g][0], acc[g][1], acc[g][2], acc[g][3]));
        for (int64_t c = 0; c < std::min<int64_t>(4, n - j); ++c) s[g * kAttnKeyTile + j + c] = sums[c];
      }
    }
  }

  // out[g * d + i] += sum_j p[g * kAttnKeyTile + j] rows[j][i] for GN heads, NC x 16 dims at a time; each
  // value row converted once for all heads.
  template <DType kType, int GN, int NC>
  static void weighted_sum_rows_heads(const float* p, const uint8_t* const* rows, int64_t n, int64_t i0, int64_t d,
                                      float* out) {
    __m512 acc[GN][NC];
    for (int g = 0; g < GN; ++g) {
      for (int c = 0; c < NC; ++c) acc[g][c] = _mm512_loadu_ps(out + g * d + i0 + 16 * c);
    }
    for (int64_t j = 0; j < n; ++j) {
      __m512 v[NC];
      for (int c = 0; c < NC; ++c) v[c] = load16<kType>(rows[j], i0 + 16 * c);
      for (int g = 0; g < GN; ++g) {
        const __m512 pj = _mm512_set1_ps(p[g * kAttnKeyTile + j]);
        for (int c = 0; c < NC; ++c) acc[g][c] = _mm512_fmadd_ps(pj, v[c], acc[g][c]);
      }
    }
    for (int g = 0; g < GN; ++g) {
      for (int c = 0; c < NC; ++c) _mm512_storeu_ps(out + g * d + i0 + 16 * c, acc[g][c]);
    }
  }

  static void load_row(DType type, const uint8_t* src, int64_t n, float* dst) {
    if (type == DType::kF32) {
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
    } else if (type == DType::kF16) {
      const auto* h = reinterpret_cast<const uint16_t*>(src);
      int64_t i = 0;
      for (; i + 16 <= n; i += 16) {
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + i))));
      }
      for (; i < n; ++i) dst[i] = fp16_to_f32(h[i]);
    } else {  // kQ8_0: n is a multiple of 32
      const auto* blocks = reinterpret_cast<const BlockQ8_0*>(src);
      for (int64_t ib = 0; ib < n / 32; ++ib) {
        const __m512 d = _mm512_set1_ps(fp16_to_f32(blocks[ib].d));
        for (int i = 0; i < 32; i += 16) {
          const __m128i q8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks[ib].qs + i));
          _mm512_storeu_ps(dst + ib * 32 + i, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q8))));
        }
      }
    }
  }
  static float dot(const float* a, const float* b, int64_t n) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
      acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
      acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
    }
    for (; i + 16 <= n; i += 16) acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    float s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
  }
  static void scale(float* y, float a, int64_t n) {
    const __m512 va = _mm512_set1_ps(a);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(y + i), va));
    for (; i < n; ++i) y[i] *= a;
  }
  static void axpy(float a, const float* x, float* y, int64_t n) {
    const __m512 va = _mm512_set1_ps(a);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    }
    for (; i < n; ++i) y[i] += a * x[i];
  }
  static void weighted_sum(const float* p, const float* v, int64_t n, int64_t d, float* out) {
    int64_t i = 0;
    for (; i + 64 <= d; i += 64) {
      __m512 a0 = _mm512_loadu_ps(out + i), a1 = _mm512_loadu_ps(out + i + 16);
      __m512 a2 = _mm512_loadu_ps(out + i + 32), a3 = _mm512_loadu_ps(out + i + 48);
      for (int64_t j = 0; j < n; ++j) {
        const __m512 pj = _mm512_set1_ps(p[j]);
        const float* row = v + j * d + i;
        a0 = _mm512_fmadd_ps(pj, _mm512_loadu_ps(row), a0);
        a1 = _mm512_fmadd_ps(pj, _mm512_loadu_ps(row + 16), a1);
        a2 = _mm512_fmadd_ps(pj, _mm512_loadu_ps(row + 32), a2);
        a3 = _mm512_fmadd_ps(pj, _mm512_loadu_ps(row + 48), a3);
      }
      _mm512_storeu_ps(out + i, a0);
      _mm512_storeu_ps(out + i + 16, a1);
      _mm512_storeu_ps(out + i + 32, a2);
      _mm512_storeu_ps(out + i + 48, a3);
    }
    for (; i + 16 <= d; i += 16) {
      __m512 a = _mm512_loadu_ps(out + i);
      for (int64_t j = 0; j < n; ++j) a = _mm512_fmadd_ps(_mm512_set1_ps(p[j]), _mm512_loadu_ps(v + j * d + i), a);
      _mm512_storeu_ps(out + i, a);
    }
    for (; i < d; ++i) {
      float a = out[i];
      for (int64_t j = 0; j < n; ++j) a += p[j] * v[j * d + i];
      out[i] = a;
    }
  }
  // 64 keys in 4 accumulators, one broadcast of q per dimension.
  static void scores_t(const float* q, const float* kt, int64_t d, float* s) {
    static_assert(kAttnKeyTile == 64);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    for (int64_t i = 0; i < d; ++i) {
      const __m512 qi = _mm512_set1_ps(q[i]);
      const float* row = kt + i * kAttnKeyTile;
      acc0 = _mm512_fmadd_ps(qi, _mm512_loadu_ps(row), acc0);
      acc1 = _mm512_fmadd_ps(qi, _mm512_loadu_ps(row + 16), acc1);
      acc2 = _mm512_fmadd_ps(qi, _mm512_loadu_ps(row + 32), acc2);
      acc3 = _mm512_fmadd_ps(qi, _mm512_loadu_ps(row + 48), acc3);
    }
    _mm512_storeu_ps(s, acc0);
    _mm512_storeu_ps(s + 16, acc1);
    _mm512_storeu_ps(s + 32, acc2);
    _mm512_storeu_ps(s + 48, acc3);
  }
  // Up to 4 heads per pass over the K tile: 16 accumulators, one load of each tile row for all of them.
  template <int GN>
  static void scores_t_heads(const float* q, int64_t d, const float* kt, float* s) {
    __m512 acc[GN][4];
    for (int g = 0; g < GN; ++g) {
      for (int c = 0; c < 4; ++c) acc[g][c] = _mm512_setzero_ps();
    }
    for (int64_t i = 0; i < d; ++i) {
      const float* row = kt + i * kAttnKeyTile;
      const __m512 k0 = _mm512_loadu_ps(row), k1 = _mm512_loadu_ps(row + 16);
      const __m512 k2 = _mm512_loadu_ps(row + 32), k3 = _mm512_loadu_ps(row + 48);
      for (int g = 0; g < GN; ++g) {
        const __m512 qi = _mm512_set1_ps(q[g * d + i]);
        acc[g][0] = _mm512_fmadd_ps(qi, k0, acc[g][0]);
        acc[g][1] = _mm512_fmadd_ps(qi, k1, acc[g][1]);
        acc[g][2] = _mm512_fmadd_ps(qi, k2, acc[g][2]);
        acc[g][3] = _mm512_fmadd_ps(qi, k3, acc[g][3]);
      }
    }
    for (int g = 0; g < GN; ++g) {
      for (int c = 0; c < 4; ++c) _mm512_storeu_ps(s + g * kAttnKeyTile + 16 * c, acc[g][c]);
    }
  }
  static void scores_t_group(const float* q, int64_t G, int64_t d, const float* kt, float* s) {
    in_groups_of_4(G, [&](auto gn, int64_t g) { scores_t_heads<gn>(q + g * d, d, kt, s + g * kAttnKeyTile); });
  }
  // Up to 4 heads per pass over the V tile, 64 output dims at a time (16 accumulators).
  template <int GN>
  static void weighted_sum_heads(const float* p, const float* v, int64_t n, int64_t d, float* out) {
    for (int64_t i = 0; i + 64 <= d; i += 64) {
      __m512 acc[GN][4];
      for (int g = 0; g < GN; ++g) {
        for (int c = 0; c < 4; ++c) acc[g][c] = _mm512_loadu_ps(out + g * d + i + 16 * c);
      }
      for (int64_t j = 0; j < n; ++j) {
        const float* row = v + j * d + i;
        const __m512 v0 = _mm512_loadu_ps(row), v1 = _mm512_loadu_ps(row + 16);
        const __m512 v2 = _mm512_loadu_ps(row + 32), v3 = _mm512_loadu_ps(row + 48);
        for (int g = 0; g < GN; ++g) {
          const __m512 pj = _mm512_set1_ps(p[g * kAttnKeyTile + j]);
          acc[g][0] = _mm512_fmadd_ps(pj, v0, acc[g][0]);
          acc[g][1] = _mm512_fmadd_ps(pj, v1, acc[g][1]);
          acc[g][2] = _mm512_fmadd_ps(pj, v2, acc[g][2]);
          acc[g][3] = _mm512_fmadd_ps(pj, v3, acc[g][3]);
        }
      }
      for (int g = 0; g < GN; ++g) {
        for (int c = 0; c < 4; ++c) _mm512_storeu_ps(out + g * d + i + 16 * c, acc[g][c]);
      }
    }
  }
  static void weighted_sum_group(const float* p, int64_t G, const float* v, int64_t n, int64_t d, float* out) {
    if (d % 64 != 0) {  // the per-head kernel handles the 16-wide and scalar tails
      for (int64_t g = 0; g < G; ++g) weighted_sum(p + g * kAttnKeyTile, v, n, d, out + g * d);
      return;
    }
    in_groups_of_4(G, [&](auto gn, int64_t g) { weighted_sum_heads<gn>(p + g * kAttnKeyTile, v, n, d, out + g * d); });
  }
  static void transpose(const float* rows, int64_t m, int64_t d, float* kt) {
    static_assert(attention_detail::kAttnTransposeRows == 16);
    if (d % 16 != 0) {
      attention_detail::transpose_rows(rows, m, d, kt);
      return;
    }
    for (int64_t i0 = 0; i0 < d; i0 += 16) {
      __m512 r[16];
      for (int64_t k = 0; k < 16; ++k) r[k] = k < m ? _mm512_loadu_ps(rows + k * d + i0) : _mm512_setzero_ps();
      transpose16(r);
      for (int64_t k = 0; k < 16; ++k) _mm512_storeu_ps(kt + (i0 + k) * kAttnKeyTile, r[k]);
    }
  }
  static float exp_sum(float* s, int64_t n, float m) {
    const __m512 vm = _mm512_set1_ps(m);
    __m512 acc = _mm512_setzero_ps();
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
      const __m512 e = kernels::x86::exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(s + j), vm));
      _mm512_storeu_ps(s + j, e);
      acc = _mm512_add_ps(acc, e);
    }
    if (j < n) {
      const auto mask = static_cast<__mmask16>((1u << (n - j)) - 1);
      const __m512 e = kernels::x86::exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, s + j), vm));
      _mm512_mask_storeu_ps(s + j, mask, e);
      acc = _mm512_mask_add_ps(acc, mask, acc, e);
    }
    return _mm512_reduce_add_ps(acc);
  }
};

}  // namespace

void attention_block_avx512(const AttentionBlock& block, float* work) {
  attention_detail::attention_block_impl<Avx512Ops>(block, work);
}

}  // namespace edgellm

#endif  // __x86_64__
