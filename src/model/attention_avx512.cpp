// AVX-512 attention variant: f16 and q8_0 rows converted 16 lanes at a time, f32 dot/axpy.
#if defined(__x86_64__)
// GCC 12 reports its own _mm512_undefined_ps() placeholders in the conversion intrinsics as uninitialised.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "kernels/quant_blocks.h"
#include "model/attention_tile.h"
#include "util/half.h"

namespace edgellm {
namespace {

struct Avx512Ops {
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
};

}  // namespace

void attention_block_avx512(const AttentionBlock& block, float* work) {
  attention_detail::attention_block_impl<Avx512Ops>(block, work);
}

}  // namespace edgellm

#endif  // __x86_64__
