// AVX-512 VNNI matmul with int8 activations (kernels/act_quant.h) for Q4_0, IQ4_NL, Q4_1, Q8_0 and
// the edgellm 4-bit group types, and the AVX-512 activation quantizer.
//
// One template over a per-type "group decoder" (the structure of ikawrakow/ik_llama.cpp:
// ggml/src/iqk/iqk_gemm_kquants.cpp): the decoder turns 128 elements of a weight row into two vectors of
// unsigned bytes in the activation layout's order (elements 0..15 and 16..31 of four 32-blocks) and 16
// lanes of block scales; vpdpbusd multiplies them with the int8 activations, 4 bytes per 32-bit lane.
//   symmetric types (Q4_0: q - 8, Q8_0: (q ^ 0x80) - 128, IQ4_NL: (codebook[q] + 128) - 128): the
//     weights stay unsigned bytes and the offset enters in f32 as -offset * s * d_x (s: the per-lane
//     activation sums), one FMA per step;
//   affine types (Q4_1, e4_*: d q + m): a second term (m d_x) * s per lane.
// Per lane: f32(int dot) * d_x, then fused multiply-add with d_w into the (row, token) accumulator; the
// accumulator's lanes are summed once at the end. The instruction sequence for one (row, token) is the
// same whatever tile it lands in, so results depend neither on the thread split nor on the batch.
//
// Compiled with the AVX-512 flags (CMakeLists.txt: *_avx512.cpp); everything is in an anonymous
// namespace so no inline function compiled for AVX-512 can be picked by the linker for another TU.
#if defined(__x86_64__) || defined(_M_X64)

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <immintrin.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "kernels/act_quant.h"
#include "kernels/kernel_table.h"
#include "kernels/quant_blocks.h"
#include "kernels/quant_edgellm.h"
#include "kernels/repack.h"

namespace edgellm::kernels {
namespace {

// One decoded group of 128 weights: u8 lo/hi vectors (activation layout order), f32 scale lanes,
// f32 offset lanes (affine types only).
struct Group {
  __m512i lo, hi;
  __m512 d, m;
};

inline __m512i nibble_mask() { return _mm512_set1_epi8(0x0F); }
inline __m512 half_lanes(__m512i words) { return _mm512_cvtph_ps(_mm512_castsi512_si256(words)); }
inline float fp16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

// Q4_0: 4 blocks of 18 bytes (fp16 d, 16 bytes of nibbles) = 36 words; the nibbles of block b are
// words 9b+1 .. 9b+8, its scale word 9b.
struct DecodeQ4_0 {
  static constexpr bool kAffine = false;
  static constexpr int kOffsetShift = 3;  // q - 8
  static constexpr size_t kGroupBytes = 4 * sizeof(BlockQ4_0);
  static size_t group_offset(int64_t g) { return static_cast<size_t>(g) * kGroupBytes; }
  static void load(const uint8_t* p, Group& out) {
    const __m512i a = _mm512_loadu_si512(p);
    const __m512i b = _mm512_maskz_loadu_epi16(0xF, p + 64);
    const __m512i qs_idx = _mm512_set_epi16(35, 34, 33, 32, 31, 30, 29, 28, 26, 25, 24, 23, 22, 21, 20, 19,  //
                                            17, 16, 15, 14, 13, 12, 11, 10, 8, 7, 6, 5, 4, 3, 2, 1);
    const __m512i d_idx = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  //
                                           27, 27, 27, 27, 18, 18, 18, 18, 9, 9, 9, 9, 0, 0, 0, 0);
    const __m512i qs = _mm512_permutex2var_epi16(a, qs_idx, b);
    out.lo = _mm512_and_si512(qs, nibble_mask());
    out.hi = _mm512_and_si512(_mm512_srli_epi16(qs, 4), nibble_mask());
    out.d = half_lanes(_mm512_permutexvar_epi16(d_idx, a));
  }
};

// IQ4_NL: Q4_0's layout (4 blocks of 18 bytes); each nibble indexes the codebook kIQ4NLValues. A byte
// shuffle within each 128-bit lane maps the nibble to codebook + 128, an unsigned byte in 1..241, so
// the weights enter vpdpbusd like Q8_0's (offset 128 through the activation sums).
struct DecodeIQ4_NL {
  static constexpr bool kAffine = false;
  static constexpr int kOffsetShift = 7;  // (v + 128) - 128
  static constexpr size_t kGroupBytes = 4 * sizeof(BlockIQ4_NL);
  static size_t group_offset(int64_t g) { return static_cast<size_t>(g) * kGroupBytes; }
  static void load(const uint8_t* p, Group& out) {
    DecodeQ4_0::load(p, out);  // the nibbles and scales sit where Q4_0's do
    const __m512i table =
        _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4NLValuesPlus128)));
    out.lo = _mm512_shuffle_epi8(table, out.lo);
    out.hi = _mm512_shuffle_epi8(table, out.hi);
  }
};

// Q4_1: 4 blocks of 20 bytes (fp16 d, fp16 m, 16 bytes of nibbles) = 40 words.
struct DecodeQ4_1 {
  static constexpr bool kAffine = true;
  static constexpr int kOffsetShift = 0;
  static constexpr size_t kGroupBytes = 4 * sizeof(BlockQ4_1);
  static size_t group_offset(int64_t g) { return static_cast<size_t>(g) * kGroupBytes; }
  static void load(const uint8_t* p, Group& out) {
    const __m512i a = _mm512_loadu_si512(p);
    const __m512i b = _mm512_maskz_loadu_epi16(0xFF, p + 64);
    const __m512i qs_idx = _mm512_set_epi16(39, 38, 37, 36, 35, 34, 33, 32, 29, 28, 27, 26, 25, 24, 23, 22,  //
                                            19, 18, 17, 16, 15, 14, 13, 12, 9, 8, 7, 6, 5, 4, 3, 2);
    const __m512i d_idx = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  //
                                           30, 30, 30, 30, 20, 20, 20, 20, 10, 10, 10, 10, 0, 0, 0, 0);
    const __m512i qs = _mm512_permutex2var_epi16(a, qs_idx, b);
    out.lo = _mm512_and_si512(qs, nibble_mask());
    out.hi = _mm512_and_si512(_mm512_srli_epi16(qs, 4), nibble_mask());
    out.d = half_lanes(_mm512_permutexvar_epi16(d_idx, a));
    out.m = half_lanes(_mm512_permutexvar_epi16(_mm512_add_epi16(d_idx, _mm512_set1_epi16(1)), a));
  }
};

// Q8_0: 4 blocks of 34 bytes (fp16 d, 32 int8); q ^ 0x80 = q + 128 as an unsigned byte.
struct DecodeQ8_0 {
  static constexpr bool kAffine = false;
  static constexpr int kOffsetShift = 7;  // (q + 128) - 128
  static constexpr size_t kGroupBytes = 4 * sizeof(BlockQ8_0);
  static size_t group_offset(int64_t g) { return static_cast<size_t>(g) * kGroupBytes; }
  static void load(const uint8_t* p, Group& out) {
    auto block_qs = [&](int b) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 34 * b + 2)); };
    const __m512i b01 = _mm512_inserti64x4(_mm512_castsi256_si512(block_qs(0)), block_qs(1), 1);
    const __m512i b23 = _mm512_inserti64x4(_mm512_castsi256_si512(block_qs(2)), block_qs(3), 1);
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
    out.lo = _mm512_xor_si512(_mm512_permutex2var_epi64(b01, _mm512_set_epi64(13, 12, 9, 8, 5, 4, 1, 0), b23), flip);
    out.hi = _mm512_xor_si512(_mm512_permutex2var_epi64(b01, _mm512_set_epi64(15, 14, 11, 10, 7, 6, 3, 2), b23), flip);
    const __m512i a = _mm512_loadu_si512(p);
    const __m512i b = _mm512_loadu_si512(p + 64);
    const __m512i d_idx = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  //
                                           51, 51, 51, 51, 34, 34, 34, 34, 17, 17, 17, 17, 0, 0, 0, 0);
    out.d = half_lanes(_mm512_permutex2var_epi16(a, d_idx, b));
  }
};

// e4_g64: two blocks of 36 bytes (fp16 d, fp16 m, 32 bytes: low nibbles elements 0..31, high 32..63).
struct DecodeE4G64 {
  static constexpr bool kAffine = true;
  static constexpr int kOffsetShift = 0;
  static constexpr size_t kGroupBytes = 2 * sizeof(BlockE4G64);
  static size_t group_offset(int64_t g) { return static_cast<size_t>(g) * kGroupBytes; }
  static void load(const uint8_t* p, Group& out) {
    const __m256i q0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 4));
    const __m256i q1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 36 + 4));
    const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1);
    const __m512i low = _mm512_and_si512(q, nibble_mask());                         // 32-blocks 0, 2
    const __m512i high = _mm512_and_si512(_mm512_srli_epi16(q, 4), nibble_mask());  // 32-blocks 1, 3
    out.lo = _mm512_permutex2var_epi64(low, _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0), high);
    out.hi = _mm512_permutex2var_epi64(low, _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2), high);
    out.d = _mm512_insertf32x8(_mm512_set1_ps(fp16(p)), _mm256_set1_ps(fp16(p + 36)), 1);
    out.m = _mm512_insertf32x8(_mm512_set1_ps(fp16(p + 2)), _mm256_set1_ps(fp16(p + 38)), 1);
  }
};

// e4_g128: one block of 68 bytes; low nibbles of its 64 bytes are elements 0..63, high ones 64..127.
struct DecodeE4G128 {
  static constexpr bool kAffine = true;
  static constexpr int kOffsetShift = 0;
  static constexpr size_t kGroupBytes = sizeof(BlockE4G128);
  static size_t group_offset(int64_t g) { return static_cast<size_t>(g) * kGroupBytes; }
  static void load(const uint8_t* p, Group& out) {
    const __m512i q = _mm512_loadu_si512(p + 4);
    const __m512i low = _mm512_and_si512(q, nibble_mask());                         // 32-blocks 0, 1
    const __m512i high = _mm512_and_si512(_mm512_srli_epi16(q, 4), nibble_mask());  // 32-blocks 2, 3
    out.lo = _mm512_shuffle_i64x2(low, high, _MM_SHUFFLE(2, 0, 2, 0));
    out.hi = _mm512_shuffle_i64x2(low, high, _MM_SHUFFLE(3, 1, 3, 1));
    out.d = _mm512_set1_ps(fp16(p));
    out.m = _mm512_set1_ps(fp16(p + 2));
  }
};

// e4_g256: one block of 132 bytes holds two groups: low nibbles of its 128 bytes are elements 0..127
// (group 2j), high nibbles 128..255 (group 2j + 1). `p` points at the block; Group 1 is selected by
// group_offset's low bit, passed through kGroupBytes == 0 below (see load_group).
struct DecodeE4G256 {
  static constexpr bool kAffine = true;
  static constexpr int kOffsetShift = 0;
  static constexpr size_t kGroupBytes = sizeof(BlockE4G256);  // per pair of groups
  static size_t group_offset(int64_t g) { return static_cast<size_t>(g / 2) * kGroupBytes; }
  static void load_half(const uint8_t* p, int half, Group& out) {
    __m512i q0 = _mm512_loadu_si512(p + 4);
    __m512i q1 = _mm512_loadu_si512(p + 68);
    if (half != 0) {
      q0 = _mm512_srli_epi16(q0, 4);
      q1 = _mm512_srli_epi16(q1, 4);
    }
    const __m512i n0 = _mm512_and_si512(q0, nibble_mask());  // 32-blocks 0, 1 of the group
    const __m512i n1 = _mm512_and_si512(q1, nibble_mask());  // 32-blocks 2, 3
    out.lo = _mm512_shuffle_i64x2(n0, n1, _MM_SHUFFLE(2, 0, 2, 0));
    out.hi = _mm512_shuffle_i64x2(n0, n1, _MM_SHUFFLE(3, 1, 3, 1));
    out.d = _mm512_set1_ps(fp16(p));
    out.m = _mm512_set1_ps(fp16(p + 2));
  }
};

// Group g of a weight row. The last group of a row whose k is not a multiple of 128 is copied into a
// zeroed buffer first (zero scales: the padding contributes exactly 0, as the activations' padding).
template <class D>
inline void load_group(const uint8_t* row, size_t row_bytes, int64_t g, int64_t n_full_groups, Group& out) {
  if constexpr (std::is_same_v<D, DecodeE4G256>) {
    (void)row_bytes;
    (void)n_full_groups;
    DecodeE4G256::load_half(row + D::group_offset(g), static_cast<int>(g & 1), out);
  } else {
    const size_t offset = D::group_offset(g);
    if (g < n_full_groups) {
      D::load(row + offset, out);
      return;
    }
    alignas(64) uint8_t tail[D::kGroupBytes + 64] = {};
    std::memcpy(tail, row + offset, row_bytes - offset);
    D::load(tail, out);
  }
}

// Group g of a row that holds all 128 elements of it (g < k / 128).
template <class D>
__attribute__((always_inline)) inline void load_full_group(const uint8_t* row, int64_t g, Group& out) {
  if constexpr (std::is_same_v<D, DecodeE4G256>) {
    DecodeE4G256::load_half(row + D::group_offset(g), static_cast<int>(g & 1), out);
  } else {
    D::load(row + D::group_offset(g), out);
  }
}

inline float hsum(__m512 v) {
  __m256 half = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 sum = _mm_add_ps(_mm256_castps256_ps128(half), _mm256_extractf128_ps(half, 1));
  sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
  sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
  return _mm_cvtss_f32(sum);
}

// The float part of one (row, token, group) step, shared by every tile so that decode and prefill
// give identical results. Symmetric types: (d_x dot - offset d_x s) d_w, the offset term precomputed
// per token (sums_dx = -offset s d_x), so the integer dot starts from a zeroed register;
// affine types: d_x dot d_w + (s d_x) m_w.
template <class D>
inline __m512 sums_times_dx(__m512i sums, __m512 dx) {
  if constexpr (D::kAffine) {
    return _mm512_mul_ps(_mm512_cvtepi32_ps(sums), dx);
  } else {
    const __m512i offset_sums = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sums, D::kOffsetShift));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(offset_sums), dx);
  }
}
template <class D>
inline __m512 accumulate(__m512i dot, __m512 dx, __m512 sums_dx, const Group& w, __m512 acc) {
  if constexpr (D::kAffine) {
    acc = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(dot), dx), w.d, acc);
    return _mm512_fmadd_ps(sums_dx, w.m, acc);
  } else {
    return _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), dx, sums_dx), w.d, acc);
  }
}

// One group of a tile: the weights of NR rows (decoded) against NT tokens.
template <class D, int NR, int NT>
__attribute__((always_inline)) inline void group_step(const Group* w, const uint8_t* const* x_rows, int64_t g,
                                                       __m512 (&acc)[NR][NT]) {
  for (int t = 0; t < NT; ++t) {
    const uint8_t* xg = x_rows[t] + static_cast<size_t>(g) * kActGroupBytes;
    const __m512i x_lo = _mm512_load_si512(xg);
    const __m512i x_hi = _mm512_load_si512(xg + 64);
    const __m512 dx = _mm512_load_ps(xg + kActScalesOffset);
    const __m512 sums_dx = sums_times_dx<D>(_mm512_load_si512(xg + kActSumsOffset), dx);
    for (int r = 0; r < NR; ++r) {
      __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[r].lo, x_lo);
      dot = _mm512_dpbusd_epi32(dot, w[r].hi, x_hi);
      acc[r][t] = accumulate<D>(dot, dx, sums_dx, w[r], acc[r][t]);
    }
  }
}

// Rows [row, row + NR) x tokens [token, token + NT).
template <class D, int NR, int NT>
void tile(const MatmulArgs& a, int64_t row_begin, int64_t row, int64_t token) {
  const int64_t n_groups = act_groups(a.k);
  const int64_t n_full = a.k / kActGroup;
  const uint8_t* w_rows[NR];
  for (int r = 0; r < NR; ++r) w_rows[r] = a.w + static_cast<size_t>(row + r) * a.w_row_bytes;
  const uint8_t* x_rows[NT];
  for (int t = 0; t < NT; ++t) x_rows[t] = a.xq + static_cast<size_t>(token + t) * a.xq_row_bytes;

  __m512 acc[NR][NT];
  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) acc[r][t] = _mm512_setzero_ps();
  }
  // Full groups in a loop without calls (so the accumulators stay in registers), then the partial one.
  for (int64_t g = 0; g < n_full; ++g) {
    Group w[NR];
    if constexpr (NT == 1) {
      // Decode streams the weights once: while this tile reads its rows, ask for the same place in the
      // next tile's rows (contiguous after these), so short rows (k = 896: under 1 KiB) do not end each
      // hardware-prefetch stream early. Past the tensor's end is harmless: prefetches do not fault.
      const size_t next_tile = static_cast<size_t>(NR) * a.w_row_bytes;
      for (int r = 0; r < NR; ++r) {
        const char* ahead = reinterpret_cast<const char*>(w_rows[r] + D::group_offset(g) + next_tile);
        for (size_t line = 0; line < D::kGroupBytes; line += 64) _mm_prefetch(ahead + line, _MM_HINT_T0);
      }
    }
    for (int r = 0; r < NR; ++r) load_full_group<D>(w_rows[r], g, w[r]);
    group_step<D, NR, NT>(w, x_rows, g, acc);
  }
  if (n_full < n_groups) {
    Group w[NR];
    for (int r = 0; r < NR; ++r) load_group<D>(w_rows[r], a.w_row_bytes, n_full, n_full, w[r]);
    group_step<D, NR, NT>(w, x_rows, n_full, acc);
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

// Prefill: a panel of rows is decoded once into `panel` (per row and group: lo, hi, d[, m], 64 bytes
// each) and then multiplied with every token tile, so the per-block decoding is paid once per panel
// instead of once per token tile. The per-(row, token) instruction sequence is the one of tile<>.
template <class D>
constexpr size_t kDecodedBytes = D::kAffine ? 256 : 192;

template <class D>
void decode_panel(const MatmulArgs& a, int64_t row, int64_t n_rows, int64_t n_groups, uint8_t* panel) {
  const int64_t n_full = a.k / kActGroup;
  for (int64_t r = 0; r < n_rows; ++r) {
    const uint8_t* w_row = a.w + static_cast<size_t>(row + r) * a.w_row_bytes;
    uint8_t* out = panel + static_cast<size_t>(r * n_groups) * kDecodedBytes<D>;
    for (int64_t g = 0; g < n_groups; ++g, out += kDecodedBytes<D>) {
      Group w;
      load_group<D>(w_row, a.w_row_bytes, g, n_full, w);
      _mm512_store_si512(out, w.lo);
      _mm512_store_si512(out + 64, w.hi);
      _mm512_store_ps(reinterpret_cast<float*>(out + 128), w.d);
      if constexpr (D::kAffine) _mm512_store_ps(reinterpret_cast<float*>(out + 192), w.m);
    }
  }
}

// Rows [row, row + NR) of a decoded panel (row `r` of the panel at panel + r * n_groups * kDecodedBytes)
// x tokens [token, token + NT).
template <class D, int NR, int NT>
void tile_decoded(const MatmulArgs& a, int64_t row_begin, const uint8_t* panel, int64_t panel_row, int64_t row,
                  int64_t token) {
  const int64_t n_groups = act_groups(a.k);
  const uint8_t* w_rows[NR];
  for (int r = 0; r < NR; ++r) {
    w_rows[r] = panel + static_cast<size_t>((row - panel_row + r) * n_groups) * kDecodedBytes<D>;
  }
  const uint8_t* x_rows[NT];
  for (int t = 0; t < NT; ++t) x_rows[t] = a.xq + static_cast<size_t>(token + t) * a.xq_row_bytes;

  __m512 acc[NR][NT];
  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) acc[r][t] = _mm512_setzero_ps();
  }
  for (int64_t g = 0; g < n_groups; ++g) {
    Group w[NR];
    for (int r = 0; r < NR; ++r) {
      const uint8_t* p = w_rows[r] + static_cast<size_t>(g) * kDecodedBytes<D>;
      w[r].lo = _mm512_load_si512(p);
      w[r].hi = _mm512_load_si512(p + 64);
      w[r].d = _mm512_load_ps(p + 128);
      if constexpr (D::kAffine) w[r].m = _mm512_load_ps(p + 192);
    }
    for (int t = 0; t < NT; ++t) {
      const uint8_t* xg = x_rows[t] + static_cast<size_t>(g) * kActGroupBytes;
      const __m512i x_lo = _mm512_load_si512(xg);
      const __m512i x_hi = _mm512_load_si512(xg + 64);
      const __m512 dx = _mm512_load_ps(xg + kActScalesOffset);
      const __m512i sums = _mm512_load_si512(xg + kActSumsOffset);
      const __m512 sums_dx = sums_times_dx<D>(sums, dx);
      for (int r = 0; r < NR; ++r) {
        __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[r].lo, x_lo);
        dot = _mm512_dpbusd_epi32(dot, w[r].hi, x_hi);
        acc[r][t] = accumulate<D>(dot, dx, sums_dx, w[r], acc[r][t]);
      }
    }
  }
  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) a.y[(token + t) * a.y_stride + (row + r - row_begin)] = hsum(acc[r][t]);
  }
}

template <class D, int NR, int NT>
void tile_decoded_tokens(const MatmulArgs& a, int64_t row_begin, const uint8_t* panel, int64_t panel_row,
                         int64_t row, int64_t token, int64_t n_tokens) {
  if constexpr (NT > 0) {
    if (n_tokens == NT) {
      tile_decoded<D, NR, NT>(a, row_begin, panel, panel_row, row, token);
    } else {
      tile_decoded_tokens<D, NR, NT - 1>(a, row_begin, panel, panel_row, row, token, n_tokens);
    }
  }
}

// Scratch of the calling thread (a decoded panel, or the packed kernels' activation offsets): grows to
// the largest request, then reused.
uint8_t* thread_scratch(size_t size_bytes) {
  struct Buffer {
    uint8_t* data = nullptr;
    size_t capacity = 0;
    ~Buffer() { std::free(data); }
  };
  thread_local Buffer buffer;
  if (size_bytes > buffer.capacity) {
    std::free(buffer.data);
    buffer.capacity = (size_bytes + 4095) / 4096 * 4096;
    buffer.data = static_cast<uint8_t*>(std::aligned_alloc(64, buffer.capacity));
    if (buffer.data == nullptr) std::abort();
  }
  return buffer.data;
}

template <class D>
void matmul_rows(const MatmulArgs& a, int64_t row_begin, int64_t row_end) {
  constexpr int kDecodeRows = 4;
  if (a.n_tokens < 4) {
    // Decode (and tiny batches): stream each weight row once per token tile, no scratch.
    constexpr int kTokens = 8;
    for (int64_t token = 0; token < a.n_tokens; token += kTokens) {
      const int64_t n = a.n_tokens - token < kTokens ? a.n_tokens - token : kTokens;
      int64_t row = row_begin;
      for (; row + kDecodeRows <= row_end; row += kDecodeRows) {
        if (n == 1) {
          tile<D, kDecodeRows, 1>(a, row_begin, row, token);
        } else {
          tile_tokens<D, kDecodeRows, kTokens>(a, row_begin, row, token, n);
        }
      }
      for (; row < row_end; ++row) tile_tokens<D, 1, kTokens>(a, row_begin, row, token, n);
    }
    return;
  }
  constexpr int kRows = 4;
  constexpr int kTokens = D::kAffine ? 3 : 4;
  constexpr int64_t kPanelRows = 16;
  constexpr int64_t kTokenChunk = 64;  // keeps a chunk's activations in L2 while the panel is reused
  const int64_t n_groups = act_groups(a.k);
  uint8_t* panel = thread_scratch(static_cast<size_t>(kPanelRows * n_groups) * kDecodedBytes<D>);
  for (int64_t chunk = 0; chunk < a.n_tokens; chunk += kTokenChunk) {
    const int64_t chunk_end = chunk + kTokenChunk < a.n_tokens ? chunk + kTokenChunk : a.n_tokens;
    for (int64_t panel_row = row_begin; panel_row < row_end; panel_row += kPanelRows) {
      const int64_t panel_end = panel_row + kPanelRows < row_end ? panel_row + kPanelRows : row_end;
      decode_panel<D>(a, panel_row, panel_end - panel_row, n_groups, panel);
      for (int64_t token = chunk; token < chunk_end; token += kTokens) {
        const int64_t n = chunk_end - token < kTokens ? chunk_end - token : kTokens;
        int64_t row = panel_row;
        for (; row + kRows <= panel_end; row += kRows) {
          tile_decoded_tokens<D, kRows, kTokens>(a, row_begin, panel, panel_row, row, token, n);
        }
        for (; row < panel_end; ++row) tile_decoded_tokens<D, 1, kTokens>(a, row_begin, panel, panel_row, row, token, n);
      }
    }
  }
}

// ---- Weights repacked in panels of 16 rows (kernels/repack.h) ----
// Lane r of every vector is row r of the panel. Per (panel, token, 32-element block): an integer dot
// product of eight vpdpbusd, each multiplying four quants per row with four activations broadcast to
// every lane, plus the block's offset term -o * sum(activations) (o = 8 for Q4_0, 128 for Q8_0 and for
// IQ4_NL, the quants being q + o: IQ4_NL's nibbles are looked up as codebook value + 128) so that it is
// the exact signed dot; then acc += (f32(dot) * d_x) * d_w.
// The sequence is the same for every tile and token count, so decode and prefill agree bit for bit, and
// the block's 16 scales are one fp16 load and conversion instead of a word permute per row.
template <DType T>
struct Packed {
  static constexpr int kVectors = T == DType::kQ8_0 ? 8 : 4;  // 64-byte quant vectors per block
  static constexpr int kOffsetShift = T == DType::kQ4_0 ? 3 : 7;
  static constexpr size_t kBlockBytes = 64 * kVectors;
  static constexpr size_t kPairBytes = 64 + 2 * kBlockBytes;
};

// The eight unsigned weight vectors of one block; w[v] pairs with the block's activations 4v .. 4v + 3.
// Q4_0's high nibbles stay in place (16 q, masked with 0xF0: no shift), their dot divided by 16 after.
template <DType T>
__attribute__((always_inline)) inline void load_packed_block(const uint8_t* q, __m512i (&w)[8]) {
  if constexpr (T == DType::kQ4_0) {
    for (int v = 0; v < 4; ++v) {
      const __m512i bytes = _mm512_load_si512(q + 64 * v);
      w[v] = _mm512_and_si512(bytes, nibble_mask());
      w[v + 4] = _mm512_and_si512(bytes, _mm512_set1_epi8(static_cast<char>(0xF0)));
    }
  } else if constexpr (T == DType::kIQ4_NL) {
    // Nibble -> codebook value + 128 (an unsigned byte) with one in-lane byte shuffle each.
    const __m512i table =
        _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4NLValuesPlus128)));
    for (int v = 0; v < 4; ++v) {
      const __m512i bytes = _mm512_load_si512(q + 64 * v);
      w[v] = _mm512_shuffle_epi8(table, _mm512_and_si512(bytes, nibble_mask()));
      w[v + 4] = _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16(bytes, 4), nibble_mask()));
    }
  } else {
    for (int v = 0; v < 8; ++v) w[v] = _mm512_load_si512(q + 64 * v);
  }
}

inline int32_t load_i32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline float load_f32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}

// One block for one token. `xb`: the token's activation group holding the block, plus 16 * (block % 4)
// (its elements 0..15 at xb, 16..31 at xb + 64, its scale at xb + kActScalesOffset). Two chains of four
// dot products (elements 0..15 and 16..31), joined at the end: exact integers, so the same value as one
// chain, in half the latency.
template <DType T>
__attribute__((always_inline)) inline __m512 packed_step(const __m512i (&w)[8], const uint8_t* xb, int32_t offset,
                                                         __m512 dw, __m512 acc) {
  __m512i dot_lo = _mm512_set1_epi32(offset), dot_hi = _mm512_setzero_si512();
  for (int v = 0; v < 4; ++v) {
    dot_lo = _mm512_dpbusd_epi32(dot_lo, w[v], _mm512_set1_epi32(load_i32(xb + 4 * v)));
    dot_hi = _mm512_dpbusd_epi32(dot_hi, w[v + 4], _mm512_set1_epi32(load_i32(xb + 64 + 4 * v)));
  }
  if constexpr (T == DType::kQ4_0) dot_hi = _mm512_srai_epi32(dot_hi, 4);  // exact: a multiple of 16
  const __m512i dot = _mm512_add_epi32(dot_lo, dot_hi);
  const __m512 dx = _mm512_set1_ps(load_f32(xb + kActScalesOffset));
  return _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(dot), dx), dw, acc);
}

// Panel `panel` x tokens [token, token + NT); `offsets`: per token, 2 * n_pairs offset terms.
template <DType T, int NT>
void packed_tile(const MatmulArgs& a, int64_t row_begin, int64_t row_end, int64_t panel, int64_t token,
                 const int32_t* offsets, int64_t offsets_stride) {
  using P = Packed<T>;
  const int64_t n_pairs = (a.k + 63) / 64;
  const uint8_t* base = a.w + static_cast<size_t>(panel) * static_cast<size_t>(n_pairs) * P::kPairBytes;
  const uint8_t* x[NT];
  const int32_t* off[NT];
  __m512 acc[NT];
  for (int t = 0; t < NT; ++t) {
    x[t] = a.xq + static_cast<size_t>(token + t) * a.xq_row_bytes;
    off[t] = offsets + (token + t) * offsets_stride;
    acc[t] = _mm512_setzero_ps();
  }
  for (int64_t j = 0; j < n_pairs; ++j) {
    const uint8_t* pair = base + static_cast<size_t>(j) * P::kPairBytes;
    for (int h = 0; h < 2; ++h) {
      const int64_t b = 2 * j + h;
      __m512i w[8];
      load_packed_block<T>(pair + 64 + h * P::kBlockBytes, w);
      const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(pair + 32 * h)));
      const size_t x_offset = static_cast<size_t>(b / 4) * kActGroupBytes + 16 * static_cast<size_t>(b % 4);
      for (int t = 0; t < NT; ++t) acc[t] = packed_step<T>(w, x[t] + x_offset, off[t][b], dw, acc[t]);
    }
  }
  const int64_t first = panel * kPackRows;
  const int64_t lo = first > row_begin ? first : row_begin;
  const int64_t hi = first + kPackRows < row_end ? first + kPackRows : row_end;
  const __mmask16 keep = static_cast<__mmask16>(((1u << (hi - first)) - 1) & ~((1u << (lo - first)) - 1));
  for (int t = 0; t < NT; ++t) {
    float* y = a.y + (token + t) * a.y_stride;
    if (first >= row_begin) {
      _mm512_mask_storeu_ps(y + (first - row_begin), keep, acc[t]);
    } else {
      alignas(64) float lanes[kPackRows];
      _mm512_store_ps(lanes, acc[t]);
      for (int64_t r = lo; r < hi; ++r) y[r - row_begin] = lanes[r - first];
    }
  }
}

template <DType T, int NT>
void packed_tile_tokens(const MatmulArgs& a, int64_t row_begin, int64_t row_end, int64_t panel, int64_t token,
                        int64_t n_tokens, const int32_t* offsets, int64_t offsets_stride) {
  if constexpr (NT > 0) {
    if (n_tokens == NT) {
      packed_tile<T, NT>(a, row_begin, row_end, panel, token, offsets, offsets_stride);
    } else {
      packed_tile_tokens<T, NT - 1>(a, row_begin, row_end, panel, token, n_tokens, offsets, offsets_stride);
    }
  }
}

// a.w: the packed matrix (kernels/repack.h); rows are its rows, as for the file layout.
template <DType T>
void matmul_rows_packed(const MatmulArgs& a, int64_t row_begin, int64_t row_end) {
  const int64_t n_blocks = 2 * ((a.k + 63) / 64);
  // Every token's offset terms, -o * (sum of the block's activations): from the sums computed once per
  // product (a.xq_block_sums), else from the per-lane sums here.
  auto* offsets = reinterpret_cast<int32_t*>(thread_scratch(static_cast<size_t>(a.n_tokens * n_blocks) * 4));
  const int64_t sums_stride = act_blocks(a.k);
  for (int64_t t = 0; t < a.n_tokens; ++t) {
    int32_t* off = offsets + t * n_blocks;
    if (a.xq_block_sums != nullptr) {
      const int32_t* sums = a.xq_block_sums + t * sums_stride;
      for (int64_t b = 0; b < n_blocks; ++b) off[b] = -sums[b] * (1 << Packed<T>::kOffsetShift);
      continue;
    }
    const uint8_t* xq = a.xq + static_cast<size_t>(t) * a.xq_row_bytes;
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* sums = xq + static_cast<size_t>(b / 4) * kActGroupBytes + kActSumsOffset + 16 * (b % 4);
      const int32_t s = load_i32(sums) + load_i32(sums + 4) + load_i32(sums + 8) + load_i32(sums + 12);
      off[b] = -s * (1 << Packed<T>::kOffsetShift);
    }
  }
  constexpr int kTokens = 8;
  // Tokens whose activations stay cached while every panel of the range is applied to them: a prefill
  // keeps 64 in L2 (one pass over the weights per 64 tokens); a decode batch takes one tile of 8 at a
  // time, so that its activations (8 x 1.8 KiB at k = 896) stay in L1 beside the panel: with 16 tokens
  // at once they did not, and a 4864 x 896 product took 270 us instead of 150 (2 threads, AVX-512).
  const int64_t kTokenChunk = a.n_tokens <= 16 ? kTokens : 64;
  const int64_t first_panel = row_begin / kPackRows, end_panel = (row_end + kPackRows - 1) / kPackRows;
  for (int64_t chunk = 0; chunk < a.n_tokens; chunk += kTokenChunk) {
    const int64_t chunk_end = chunk + kTokenChunk < a.n_tokens ? chunk + kTokenChunk : a.n_tokens;
    for (int64_t panel = first_panel; panel < end_panel; ++panel) {
      for (int64_t token = chunk; token < chunk_end; token += kTokens) {
        const int64_t n = chunk_end - token < kTokens ? chunk_end - token : kTokens;
        packed_tile_tokens<T, kTokens>(a, row_begin, row_end, panel, token, n, offsets, n_blocks);
      }
    }
  }
}

// The format of kernels/act_quant.h, bit-identical with ref::quantize_act: the same amax, the same
// f32 division and reciprocal, x * (1/d) rounded half-to-even by vcvtps2dq (MXCSR default).
void quantize_act(const float* x, int64_t k, uint8_t* out) {
  const int64_t n_groups = act_groups(k);
  const __m512i ones = _mm512_set1_epi8(1);
  for (int64_t g = 0; g < n_groups; ++g) {
    uint8_t* group = out + static_cast<size_t>(g) * kActGroupBytes;
    alignas(64) float d_lanes[16];
    for (int b = 0; b < 4; ++b) {
      const int64_t first = g * kActGroup + 32 * b;
      const int64_t left = k - first;
      const __mmask16 m0 = left >= 16 ? 0xFFFF : (left <= 0 ? 0 : static_cast<__mmask16>((1u << left) - 1));
      const __mmask16 m1 =
          left >= 32 ? 0xFFFF : (left <= 16 ? 0 : static_cast<__mmask16>((1u << (left - 16)) - 1));
      const __m512 v0 = _mm512_maskz_loadu_ps(m0, x + first);
      const __m512 v1 = _mm512_maskz_loadu_ps(m1, x + first + 16);
      const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
      const float d = amax / 127.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      const __m512 vid = _mm512_set1_ps(id);
      const __m128i q0 = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v0, vid)));
      const __m128i q1 = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v1, vid)));
      _mm_store_si128(reinterpret_cast<__m128i*>(group + 16 * b), q0);
      _mm_store_si128(reinterpret_cast<__m128i*>(group + 64 + 16 * b), q1);
      for (int lane = 4 * b; lane < 4 * b + 4; ++lane) d_lanes[lane] = d;
    }
    __m512i sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, _mm512_load_si512(group));
    sums = _mm512_dpbusd_epi32(sums, ones, _mm512_load_si512(group + 64));
    _mm512_store_ps(reinterpret_cast<float*>(group + kActScalesOffset), _mm512_load_ps(d_lanes));
    _mm512_store_si512(group + kActSumsOffset, sums);
  }
}

}  // namespace

void fill_q8act_avx512(KernelTable& table) {
  auto set = [&](DType type, MatmulRowsFn fn) { table.matmul_q8act[type_slot(type)] = fn; };
  table.quantize_act = quantize_act;
  set(DType::kQ4_0, matmul_rows<DecodeQ4_0>);
  set(DType::kIQ4_NL, matmul_rows<DecodeIQ4_NL>);
  set(DType::kQ4_1, matmul_rows<DecodeQ4_1>);
  set(DType::kQ8_0, matmul_rows<DecodeQ8_0>);
  set(DType::kE4G64, matmul_rows<DecodeE4G64>);
  set(DType::kE4G128, matmul_rows<DecodeE4G128>);
  set(DType::kE4G256, matmul_rows<DecodeE4G256>);
  table.matmul_q8act_packed[type_slot(DType::kQ4_0)] = matmul_rows_packed<DType::kQ4_0>;
  table.matmul_q8act_packed[type_slot(DType::kIQ4_NL)] = matmul_rows_packed<DType::kIQ4_NL>;
  table.matmul_q8act_packed[type_slot(DType::kQ8_0)] = matmul_rows_packed<DType::kQ8_0>;
}

}  // namespace edgellm::kernels

#endif  // x86-64
