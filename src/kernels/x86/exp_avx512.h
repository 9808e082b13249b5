// e^x on 16 floats with AVX-512F, for the softmax of attention and SiLU. Included only by *_avx512.cpp
// files (compiled with the AVX-512 flags).
// Cephes' expf: n = round(x log2 e), r = x - n ln2 (ln2 in two parts) in [-ln2/2, ln2/2], a degree-5
// polynomial for (e^r - 1 - r) / r^2, times 2^n by scalef. Relative error ~1e-7 against std::exp. Below
// -87.3 the result stays ~1e-38 (a normal float, never 0); above ~88.72 it is +inf, as std::exp's.
#pragma once

#include <immintrin.h>

namespace edgellm::kernels::x86 {

inline __m512 exp_avx512(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(89.0f));  // scalef: inf past 2^128
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

}  // namespace edgellm::kernels::x86
