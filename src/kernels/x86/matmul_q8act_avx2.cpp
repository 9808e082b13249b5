// AVX2 matmul with int8 activations (kernels/act_quant.h) for Q4_0, IQ4_NL, Q4_1, Q8_0 and the
// edgellm 4-bit group types, and the AVX2 activation quantizer. The same structure as
// x86/matmul_q8act_avx512.cpp on 256-bit vectors: each 128-element group is taken as two halves
// (32-blocks 0-1, then 2-3), whose bytes sit contiguously in the activation layout. Products use
// vpmaddubsw (u8 x s8 -> pairs summed into s16) and vpmaddwd with ones (-> 4 bytes per s32 lane, the
// lanes the activation sums are kept for):
//   4-bit weights (0..15): pairs are at most 2 * 15 * 127, no saturation; the Q4_0 offset enters
//     through -8 * sums, Q4_1 / e4 offsets as (m d_x) * sums;
//   Q8_0 (signed, possibly -128): vpmaddubsw(|w|, sign(x, w)), pairs at most 2 * 128 * 127 < 2^15;
//   IQ4_NL (nibbles looked up in its signed codebook, -127..113; never -128): vpmaddubsw(|x|,
//     sign(w, x)), pairs at most 2 * 127 * 127, with |x| formed once per token instead of |w| once per
//     (row, token). (IQ4_NL as unsigned codebook + 128 would reach 2 * 241 * 127 and saturate.)
//
// Compiled with the AVX2 flags (CMakeLists.txt: *_avx2.cpp); anonymous namespace for ODR safety.
#if defined(__x86_64__) || defined(_M_X64)

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/act_quant.h"
#include "kernels/kernel_table.h"
#include "kernels/quant_blocks.h"
#include "kernels/quant_edgellm.h"

namespace edgellm::kernels {
namespace {

// One decoded half group (64 weights): lo/hi bytes in activation order, 8 f32 scale and offset lanes.
struct Half {
  __m256i lo, hi;
  __m256 d, m;
};

inline __m256i nibbles(__m256i v) { return _mm256_and_si256(v, _mm256_set1_epi8(0x0F)); }
inline __m256i high_nibbles(__m256i v) { return nibbles(_mm256_srli_epi16(v, 4)); }
inline __m256i load256(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline __m128i load128(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
inline float fp16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}
inline __m256 two_scales(float first, float second) {
  return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_set1_ps(first)), _mm_set1_ps(second), 1);
}
// [a.low128 | b.low128] and [a.high128 | b.high128].
inline __m256i low_halves(__m256i a, __m256i b) { return _mm256_permute2x128_si256(a, b, 0x20); }
inline __m256i high_halves(__m256i a, __m256i b) { return _mm256_permute2x128_si256(a, b, 0x31); }

// 32-blocks of 18 / 20 bytes whose 16 nibble bytes start at `qs_offset` (Q4_0, IQ4_NL, Q4_1).
template <size_t kBlockBytes, size_t kQsOffset>
void four_bit_pair(const uint8_t* p, int half, Half& out) {
  const uint8_t* b0 = p + (2 * half) * kBlockBytes;
  const uint8_t* b1 = b0 + kBlockBytes;
  const __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(load128(b0 + kQsOffset)), load128(b1 + kQsOffset), 1);
  out.lo = nibbles(q);
  out.hi = high_nibbles(q);
  out.d = two_scales(fp16(b0), fp16(b1));
}

struct DecodeQ4_0 {
  static constexpr bool kAffine = false;
  static constexpr bool kSigned = false;
  static constexpr int kOffsetShift = 3;
  static constexpr size_t kGroupBytes = 4 * sizeof(BlockQ4_0);
  static size_t group_offset(int64_t g) { return static_cast<size_t>(g) * kGroupBytes; }
  static void load(const uint8_t* p, int64_t /*g*/, int half, Half& out) {
    four_bit_pair<sizeof(BlockQ4_0), 2>(p, half, out);
  }
};

// IQ4_NL: Q4_0's block layout; vpshufb maps each nibble to its signed codebook value.
struct DecodeIQ4_NL {
  static constexpr bool kAffine = false;
  static constexpr bool kSigned = true;
  static constexpr bool kNoMinus128 = true;  // the codebook starts at -127
  static constexpr int kOffsetShift = 0;
  static constexpr size_t kGroupBytes = 4 * sizeof(BlockIQ4_NL);
  static size_t group_offset(int64_t g) { return static_cast<size_t>(g) * kGroupBytes; }
  static void load(const uint8_t* p, int64_t /*g*/, int half, Half& out) {
    four_bit_pair<sizeof(BlockIQ4_NL), 2>(p, half, out);
    const __m256i table = _mm256_broadcastsi128_si256(load128(reinterpret_cast<const uint8_t*>(kIQ4NLValues)));
    out.lo = _mm256_shuffle_epi8(table, out.lo);
    out.hi = _mm256_shuffle_epi8(table, out.hi);
  }
};

struct DecodeQ4_1 {
  static constexpr bool kAffine = true;
  static constexpr bool kSigned = false;
  static constexpr int kOffsetShift = 0;
  static constexpr size_t kGroupBytes = 4 * sizeof(BlockQ4_1);
  static size_t group_offset(int64_t g) { return static_cast<size_t>(g) * kGroupBytes; }
  static void load(const uint8_t* p, int64_t /*g*/, int half, Half& out) {
    four_bit_pair<sizeof(BlockQ4_1), 4>(p, half, out);
    const uint8_t* b0 = p + (2 * half) * sizeof(BlockQ4_1);
    out.m = two_scales(fp16(b0 + 2), fp16(b0 + sizeof(BlockQ4_1) + 2));
  }
};

struct DecodeQ8_0 {
  static constexpr bool kAffine = false;
  static constexpr bool kSigned = true;
  static constexpr int kOffsetShift = 0;
  static constexpr size_t kGroupBytes = 4 * sizeof(BlockQ8_0);
  static size_t group_offset(int64_t g) { return static_cast<size_t>(g) * kGroupBytes; }
  static void load(const uint8_t* p, int64_t /*g*/, int half, Half& out) {
    const uint8_t* b0 = p + (2 * half) * sizeof(BlockQ8_0);
    const uint8_t* b1 = b0 + sizeof(BlockQ8_0);
    const __m256i q0 = load256(b0 + 2), q1 = load256(b1 + 2);
    out.lo = low_halves(q0, q1);
    out.hi = high_halves(q0, q1);
    out.d = two_scales(fp16(b0), fp16(b1));
  }
};

// e4 types: 32 bytes of nibbles whose low nibbles are one 32-block and high nibbles the next (g64), or
// two such 32-byte runs (g128: low nibbles of bytes 0..63 are 32-blocks 0-1; g256: 128 bytes per
// two groups).
struct DecodeE4G64 {
  static constexpr bool kAffine = true;
  static constexpr bool kSigned = false;
  static constexpr int kOffsetShift = 0;
  static constexpr size_t kGroupBytes = 2 * sizeof(BlockE4G64);
  static size_t group_offset(int64_t g) { return static_cast<size_t>(g) * kGroupBytes; }
  static void load(const uint8_t* p, int64_t /*g*/, int half, Half& out) {
    const uint8_t* blk = p + half * sizeof(BlockE4G64);
    const __m256i q = load256(blk + 4);
    const __m256i a = nibbles(q), b = high_nibbles(q);
    out.lo = low_halves(a, b);
    out.hi = high_halves(a, b);
    out.d = _mm256_set1_ps(fp16(blk));
    out.m = _mm256_set1_ps(fp16(blk + 2));
  }
};

struct DecodeE4G128 {
  static constexpr bool kAffine = true;
  static constexpr bool kSigned = false;
  static constexpr int kOffsetShift = 0;
  static constexpr size_t kGroupBytes = sizeof(BlockE4G128);
  static size_t group_offset(int64_t g) { return static_cast<size_t>(g) * kGroupBytes; }
  static void load(const uint8_t* p, int64_t /*g*/, int half, Half& out) {
    const __m256i q0 = load256(p + 4), q1 = load256(p + 36);
    const __m256i a = half == 0 ? nibbles(q0) : high_nibbles(q0);
    const __m256i b = half == 0 ? nibbles(q1) : high_nibbles(q1);
    out.lo = low_halves(a, b);
    out.hi = high_halves(a, b);
    out.d = _mm256_set1_ps(fp16(p));
    out.m = _mm256_set1_ps(fp16(p + 2));
  }
};

struct DecodeE4G256 {
  static constexpr bool kAffine = true;
  static constexpr bool kSigned = false;
  static constexpr int kOffsetShift = 0;
  static constexpr size_t kGroupBytes = sizeof(BlockE4G256);  // per pair of groups; never a partial group
  static size_t group_offset(int64_t g) { return static_cast<size_t>(g / 2) * kGroupBytes; }
  static void load(const uint8_t* p, int64_t g, int half, Half& out) {
    const uint8_t* qs = p + 4 + 64 * half;
    const __m256i q0 = load256(qs), q1 = load256(qs + 32);
    const bool high = (g & 1) != 0;
    const __m256i a = high ? high_nibbles(q0) : nibbles(q0);
    const __m256i b = high ? high_nibbles(q1) : nibbles(q1);
    out.lo = low_halves(a, b);
    out.hi = high_halves(a, b);
    out.d = _mm256_set1_ps(fp16(p));
    out.m = _mm256_set1_ps(fp16(p + 2));
  }
};

// Signed weight types that never hold -128 (kNoMinus128) let the activations be vpmaddubsw's unsigned
// operand: sign(w, x) cannot overflow, and |x| is shared by every row of a tile.
template <class D>
constexpr bool kAbsActivations = requires { requires D::kNoMinus128; };

template <class D>
inline void load_half(const uint8_t* row, size_t row_bytes, int64_t g, int half, int64_t n_full_groups, Half& out) {
  const size_t offset = D::group_offset(g);
  if (g < n_full_groups) {
    D::load(row + offset, g, half, out);
    return;
  }
  alignas(32) uint8_t tail[D::kGroupBytes + 32] = {};  // zero scales: padding contributes 0
  std::memcpy(tail, row + offset, row_bytes - offset);
  D::load(tail, g, half, out);
}

inline float hsum(__m256 v) {
  __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
  sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
  return _mm_cvtss_f32(sum);
}

template <class D, int NR, int NT>
void tile(const MatmulArgs& a, int64_t row_begin, int64_t row, int64_t token) {
  const int64_t n_groups = act_groups(a.k);
  const int64_t n_full = a.k / kActGroup;
  const uint8_t* w_rows[NR];
  for (int r = 0; r < NR; ++r) w_rows[r] = a.w + static_cast<size_t>(row + r) * a.w_row_bytes;
  const uint8_t* x_rows[NT];
  for (int t = 0; t < NT; ++t) x_rows[t] = a.xq + static_cast<size_t>(token + t) * a.xq_row_bytes;
  const __m256i ones16 = _mm256_set1_epi16(1);

  __m256 acc[NR][NT];
  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) acc[r][t] = _mm256_setzero_ps();
  }
  for (int64_t g = 0; g < n_groups; ++g) {
    for (int half = 0; half < 2; ++half) {
      Half w[NR];
      for (int r = 0; r < NR; ++r) load_half<D>(w_rows[r], a.w_row_bytes, g, half, n_full, w[r]);
      for (int t = 0; t < NT; ++t) {
        const uint8_t* xg = x_rows[t] + static_cast<size_t>(g) * kActGroupBytes + 32 * half;
        const __m256i x_lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(xg));
        const __m256i x_hi = _mm256_load_si256(reinterpret_cast<const __m256i*>(xg + 64));
        const __m256 dx = _mm256_load_ps(reinterpret_cast<const float*>(xg + kActScalesOffset));
        const __m256i sums = _mm256_load_si256(reinterpret_cast<const __m256i*>(xg + kActSumsOffset));
        __m256 sums_dx;
        if constexpr (D::kAffine) sums_dx = _mm256_mul_ps(_mm256_cvtepi32_ps(sums), dx);
        const __m256i x_lo_abs = kAbsActivations<D> ? _mm256_sign_epi8(x_lo, x_lo) : x_lo;
        const __m256i x_hi_abs = kAbsActivations<D> ? _mm256_sign_epi8(x_hi, x_hi) : x_hi;
        for (int r = 0; r < NR; ++r) {
          __m256i dot;
          if constexpr (kAbsActivations<D>) {
            const __m256i p_lo = _mm256_maddubs_epi16(x_lo_abs, _mm256_sign_epi8(w[r].lo, x_lo));
            const __m256i p_hi = _mm256_maddubs_epi16(x_hi_abs, _mm256_sign_epi8(w[r].hi, x_hi));
            dot = _mm256_add_epi32(_mm256_madd_epi16(p_lo, ones16), _mm256_madd_epi16(p_hi, ones16));
          } else if constexpr (D::kSigned) {
            const __m256i p_lo = _mm256_maddubs_epi16(_mm256_sign_epi8(w[r].lo, w[r].lo), _mm256_sign_epi8(x_lo, w[r].lo));
            const __m256i p_hi = _mm256_maddubs_epi16(_mm256_sign_epi8(w[r].hi, w[r].hi), _mm256_sign_epi8(x_hi, w[r].hi));
            dot = _mm256_add_epi32(_mm256_madd_epi16(p_lo, ones16), _mm256_madd_epi16(p_hi, ones16));
          } else {
            const __m256i pairs = _mm256_add_epi16(_mm256_maddubs_epi16(w[r].lo, x_lo), _mm256_maddubs_epi16(w[r].hi, x_hi));
            dot = _mm256_madd_epi16(pairs, ones16);
            if constexpr (!D::kAffine) dot = _mm256_sub_epi32(dot, _mm256_slli_epi32(sums, D::kOffsetShift));
          }
          acc[r][t] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(dot), dx), w[r].d, acc[r][t]);
          if constexpr (D::kAffine) acc[r][t] = _mm256_fmadd_ps(sums_dx, w[r].m, acc[r][t]);
        }
      }
    }
  }
  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) a.y[(token + t) * a.y_stride + (row + r - row_begin)] = hsum(acc[r][t]);
  }
}

template <class D, int NR, int NT>
void tile_tokens(const MatmulArgs& a, int64_t row_begin, int64_t row, int64_t token, int64_t n_tokens) {
  if constexpr (NT > 0) {
    if (n_tokens == NT) {
      tile<D, NR, NT>(a, row_begin, row, token);
    } else {
      tile_tokens<D, NR, NT - 1>(a, row_begin, row, token, n_tokens);
    }
  }
}

template <class D>
void matmul_rows(const MatmulArgs& a, int64_t row_begin, int64_t row_end) {
  constexpr int kDecodeRows = 4;
  constexpr int kRows = 2;
  constexpr int kTokens = 3;
  constexpr int64_t kRowPanel = 32;
  for (int64_t panel = row_begin; panel < row_end; panel += kRowPanel) {
    const int64_t panel_end = panel + kRowPanel < row_end ? panel + kRowPanel : row_end;
    if (a.n_tokens == 1) {
      int64_t row = panel;
      for (; row + kDecodeRows <= panel_end; row += kDecodeRows) tile<D, kDecodeRows, 1>(a, row_begin, row, 0);
      for (; row < panel_end; ++row) tile<D, 1, 1>(a, row_begin, row, 0);
      continue;
    }
    for (int64_t token = 0; token < a.n_tokens; token += kTokens) {
      const int64_t n = a.n_tokens - token < kTokens ? a.n_tokens - token : kTokens;
      int64_t row = panel;
      for (; row + kRows <= panel_end; row += kRows) tile_tokens<D, kRows, kTokens>(a, row_begin, row, token, n);
      for (; row < panel_end; ++row) tile_tokens<D, 1, kTokens>(a, row_begin, row, token, n);
    }
  }
}

// Bit-identical with ref::quantize_act (same amax, division, reciprocal; vcvtps2dq rounds half-even).
void quantize_act(const float* x, int64_t k, uint8_t* out) {
  const int64_t n_groups = act_groups(k);
  const __m256 sign_bit = _mm256_set1_ps(-0.0f);
  for (int64_t g = 0; g < n_groups; ++g) {
    uint8_t* group = out + static_cast<size_t>(g) * kActGroupBytes;
    alignas(32) float d_lanes[16];
    for (int b = 0; b < 4; ++b) {
      const int64_t first = g * kActGroup + 32 * b;
      alignas(32) float v[32];
      if (first + 32 <= k) {
        std::memcpy(v, x + first, sizeof(v));
      } else {
        for (int j = 0; j < 32; ++j) v[j] = first + j < k ? x[first + j] : 0.0f;
      }
      __m256 vec[4], amax = _mm256_setzero_ps();
      for (int c = 0; c < 4; ++c) {
        vec[c] = _mm256_load_ps(v + 8 * c);
        amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign_bit, vec[c]));
      }
      __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
      m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
      m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
      const float d = _mm_cvtss_f32(m4) / 127.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      const __m256 vid = _mm256_set1_ps(id);
      __m256i q[4];
      for (int c = 0; c < 4; ++c) q[c] = _mm256_cvtps_epi32(_mm256_mul_ps(vec[c], vid));
      // 32 s32 -> 32 s8 in order: packs work per 128-bit lane, the permute restores the order.
      const __m256i s16_01 = _mm256_packs_epi32(q[0], q[1]);
      const __m256i s16_23 = _mm256_packs_epi32(q[2], q[3]);
      const __m256i s8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(s16_01, s16_23),
                                                     _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
      _mm_store_si128(reinterpret_cast<__m128i*>(group + 16 * b), _mm256_castsi256_si128(s8));
      _mm_store_si128(reinterpret_cast<__m128i*>(group + 64 + 16 * b), _mm256_extracti128_si256(s8, 1));
      for (int lane = 4 * b; lane < 4 * b + 4; ++lane) d_lanes[lane] = d;
    }
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (int half = 0; half < 2; ++half) {
      const __m256i lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(group + 32 * half));
      const __m256i hi = _mm256_load_si256(reinterpret_cast<const __m256i*>(group + 64 + 32 * half));
      const __m256i pairs = _mm256_add_epi16(_mm256_maddubs_epi16(ones8, lo), _mm256_maddubs_epi16(ones8, hi));
      _mm256_store_si256(reinterpret_cast<__m256i*>(group + kActSumsOffset + 32 * half), _mm256_madd_epi16(pairs, ones16));
      _mm256_store_ps(reinterpret_cast<float*>(group + kActScalesOffset + 32 * half), _mm256_load_ps(d_lanes + 8 * half));
    }
  }
}

}  // namespace

void fill_q8act_avx2(KernelTable& table) {
  auto set = [&](DType type, MatmulRowsFn fn) { table.matmul_q8act[type_slot(type)] = fn; };
  table.quantize_act = quantize_act;
  set(DType::kQ4_0, matmul_rows<DecodeQ4_0>);
  set(DType::kIQ4_NL, matmul_rows<DecodeIQ4_NL>);
  set(DType::kQ4_1, matmul_rows<DecodeQ4_1>);
  set(DType::kQ8_0, matmul_rows<DecodeQ8_0>);
  set(DType::kE4G64, matmul_rows<DecodeE4G64>);
  set(DType::kE4G128, matmul_rows<DecodeE4G128>);
  set(DType::kE4G256, matmul_rows<DecodeE4G256>);
}

}  // namespace edgellm::kernels

#endif  // x86-64
